#include "api/event_hub.h"

#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <thread>

#include "absl/strings/str_format.h"
#include "vmm/devices/boot_marker.h"

namespace pcivmm::api {

EventHub::EventHub(uint64_t start_ns) : start_ns_(start_ns) {}

EventHub::~EventHub() = default;

absl::StatusOr<std::unique_ptr<EventHub::Subscription>> EventHub::Subscribe(uint32_t kinds,
                                                                            size_t buffer) {
  base::UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("the event feed is closed (shutting down)");
  if (used_ == (1u << kMaxSubscribers) - 1) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%d event subscribers already watch this VM", kMaxSubscribers));
  }
  const int slot = std::countr_one(used_);
  used_ |= 1u << slot;
  std::unique_ptr<Subscription> s(new Subscription(this, slot, kinds, buffer, std::move(wake)));
  if ((kinds & EventKindBit(EventKind::kConfigAccess)) != 0) config_subscribers_.fetch_add(1);
  slots_[static_cast<size_t>(slot)].subscription.store(s.get(), std::memory_order_seq_cst);
  active_.fetch_or(1u << slot, std::memory_order_release);
  return s;
}

// The slot is emptied first, then we wait for producers already inside it to leave (they
// hold a pin for one ring push); only then may the subscription be freed or the slot reused.
void EventHub::Unsubscribe(int slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  Subscription* sub = s.subscription.exchange(nullptr, std::memory_order_seq_cst);
  active_.fetch_and(~(1u << slot), std::memory_order_release);
  while (s.pins.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  if (sub != nullptr && (sub->kinds_ & EventKindBit(EventKind::kConfigAccess)) != 0) {
    config_subscribers_.fetch_sub(1);
  }
  absl::MutexLock lock(&mu_);
  used_ &= ~(1u << slot);
}

void EventHub::Publish(EventRecord record) {
  record.sequence = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
  record.time_ns = devices::MonotonicNowNs() - start_ns_;
  uint32_t active = active_.load(std::memory_order_acquire);
  while (active != 0) {
    const auto slot = static_cast<size_t>(std::countr_zero(active));
    active &= active - 1;
    Slot& s = slots_[slot];
    s.pins.fetch_add(1, std::memory_order_seq_cst);
    if (Subscription* sub = s.subscription.load(std::memory_order_seq_cst)) sub->Offer(record);
    s.pins.fetch_sub(1, std::memory_order_release);
  }
}

void EventHub::OnMapEvent(const pci::MapEvent& event) {
  EventRecord r;
  r.kind = EventKind::kBarMapping;
  r.map = event;
  Publish(r);
}

void EventHub::OnConfigAccess(const pci::ConfigAccess& access) {
  if (config_subscribers_.load(std::memory_order_relaxed) == 0) return;
  EventRecord r;
  r.kind = EventKind::kConfigAccess;
  r.config = access;
  Publish(r);
}

void EventHub::PublishBootMarker(uint64_t boot_ns, int vcpu) {
  EventRecord r;
  r.kind = EventKind::kBootMarker;
  r.boot_ns = boot_ns;
  r.vcpu = vcpu;
  Publish(r);
}

void EventHub::PublishState(VmState state, int exit_code) {
  EventRecord r;
  r.kind = EventKind::kStateChange;
  r.state = state;
  r.exit_code = exit_code;
  Publish(r);
}

void EventHub::PublishBootTimeout(platform::BootTimeoutReport report) {
  EventRecord r;
  r.kind = EventKind::kBootTimeout;
  {
    absl::MutexLock lock(&reports_mu_);
    r.report = static_cast<uint32_t>(reports_.size());
    reports_.push_back(std::move(report));
  }
  Publish(r);
}

std::optional<platform::BootTimeoutReport> EventHub::boot_timeout_report(uint32_t index) const {
  absl::MutexLock lock(&reports_mu_);
  if (index >= reports_.size()) return std::nullopt;
  return reports_[index];
}

void EventHub::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (Slot& s : slots_) {
    s.pins.fetch_add(1, std::memory_order_seq_cst);  // like a producer: see Unsubscribe
    if (Subscription* sub = s.subscription.load(std::memory_order_seq_cst)) sub->MarkClosed();
    s.pins.fetch_sub(1, std::memory_order_release);
  }
}

void EventHub::Subscription::Close() {
  MarkClosed();
  Leave();
}

void EventHub::Subscription::MarkClosed() {
  closed_.store(true, std::memory_order_release);
  Wake(/*force=*/true);
}

void EventHub::Subscription::Leave() {
  if (subscribed_.exchange(false, std::memory_order_acq_rel)) hub_->Unsubscribe(slot_);
}

EventHub::Subscription::Subscription(EventHub* hub, int slot, uint32_t kinds, size_t buffer,
                                     base::UniqueFd wake)
    : ring_(buffer), hub_(hub), slot_(slot), kinds_(kinds), wake_(std::move(wake)) {}

EventHub::Subscription::~Subscription() { Leave(); }

void EventHub::Subscription::Offer(const EventRecord& record) {
  if ((kinds_ & EventKindBit(record.kind)) == 0) return;
  if (!ring_.TryPush(record)) dropped_.fetch_add(1, std::memory_order_relaxed);
  Wake(/*force=*/false);
}

// Every offer adds 2 to offers_; bit 0 says the consumer is (about to be) asleep. Only the
// producer that clears the bit writes the eventfd: one non-blocking write per sleep.
void EventHub::Subscription::Wake(bool force) {
  const uint64_t old = offers_.fetch_add(2, std::memory_order_acq_rel);
  const bool sleeping =
      (old & 1) != 0 && (offers_.fetch_and(~uint64_t{1}, std::memory_order_acq_rel) & 1) != 0;
  if (!sleeping && !force) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof(one));
}

void EventHub::Subscription::Drain(size_t max, std::vector<EventRecord>* out) {
  while (out->size() < max) {
    std::optional<EventRecord> r = ring_.TryPop();
    if (!r) return;
    out->push_back(*r);
  }
}

void EventHub::Subscription::WaitForWake(absl::Duration timeout) {
  pollfd p{wake_.get(), POLLIN, 0};
  const int64_t ms =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))));
  ::poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, INT32_MAX)));
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(wake_.get(), &count, sizeof(count));
}

// The consumer reads offers_ *before* draining and goes to sleep only if a CAS proves no
// offer came since: an offer either happened before that read (then its push is visible to
// the drain: the acquire load pairs with the offer's release) or after it (then the CAS
// fails and we drain again, or the offer sees bit 0 and wakes us). No fences needed.
EventHub::Subscription::Batch EventHub::Subscription::Next(size_t max, absl::Duration timeout) {
  Batch b;
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const uint64_t seen = offers_.load(std::memory_order_acquire) & ~uint64_t{1};
    Drain(max, &b.events);
    if (!b.events.empty() || dropped_.load(std::memory_order_relaxed) != 0 ||
        closed_.load(std::memory_order_acquire) || absl::Now() >= deadline) {
      break;
    }
    uint64_t expected = seen;
    if (!offers_.compare_exchange_strong(expected, seen | 1, std::memory_order_acq_rel)) continue;
    WaitForWake(deadline - absl::Now());
    offers_.fetch_and(~uint64_t{1}, std::memory_order_acq_rel);
  }
  b.dropped = dropped_.exchange(0, std::memory_order_relaxed);
  b.closed = b.events.empty() && closed_.load(std::memory_order_acquire);
  return b;
}

}  // namespace pcivmm::api
