#include "api/event_hub.h"

#include <poll.h>
#include <sys/eventfd.h>

#include <bit>
#include <cerrno>
#include <thread>

#include "absl/strings/str_format.h"
#include "vmm/boot_marker.h"

namespace pcivmm {

EventHub::EventHub(uint64_t start_ns) : start_ns_(start_ns) {}

EventHub::~EventHub() = default;

absl::StatusOr<std::unique_ptr<EventHub::Subscription>> EventHub::Subscribe(uint32_t kinds,
                                                                            size_t buffer) {
  UniqueFd wake(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
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
  record.time_ns = MonotonicNowNs() - start_ns_;
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

void EventHub::OnMapEvent(const MapEvent& event) {
  EventRecord r;
  r.kind = EventKind::kBarMapping;
  r.map = event;
  Publish(r);
}

void EventHub::OnConfigAccess(const ConfigAccess& access) {
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

void EventHub::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (Slot& s : slots_) {
    s.pins.fetch_add(1, std::memory_order_seq_cst);  // like a producer: see Unsubscribe
    if (Subscription* sub = s.subscription.load(std::memory_order_seq_cst)) {
      sub->closed_.store(true, std::memory_order_release);
      sub->Wake(/*force=*/true);
    }
    s.pins.fetch_sub(1, std::memory_order_release);
  }
}

EventHub::Subscription::Subscription(EventHub* hub, int slot, uint32_t kinds, size_t buffer,
                                     UniqueFd wake)
    : hub_(hub), slot_(slot), kinds_(kinds), ring_(buffer), wake_(std::move(wake)) {}

EventHub::Subscription::~Subscription() { hub_->Unsubscribe(slot_); }

void EventHub::Subscription::Offer(const EventRecord& record) {
  if ((kinds_ & EventKindBit(record.kind)) == 0) return;
  if (!ring_.TryPush(record)) dropped_.fetch_add(1, std::memory_order_relaxed);
  // Pairs with the fence in Next(): either the consumer sees the event on its re-check, or
  // this thread sees waiting_ and wakes it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  Wake(/*force=*/false);
}

// A non-blocking eventfd write; only when the consumer said it sleeps (one per sleep).
void EventHub::Subscription::Wake(bool force) {
  if (!waiting_.exchange(false, std::memory_order_acq_rel) && !force) return;
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
  ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(wake_.get(), &count, sizeof(count));
}

EventHub::Subscription::Batch EventHub::Subscription::Next(size_t max, absl::Duration timeout) {
  Batch b;
  Drain(max, &b.events);
  if (b.events.empty() && dropped_.load(std::memory_order_relaxed) == 0 &&
      !closed_.load(std::memory_order_acquire)) {
    waiting_.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    Drain(max, &b.events);
    if (b.events.empty() && dropped_.load(std::memory_order_relaxed) == 0 &&
        !closed_.load(std::memory_order_acquire)) {
      WaitForWake(timeout);
    }
    waiting_.store(false, std::memory_order_relaxed);
    Drain(max, &b.events);
  }
  b.dropped = dropped_.exchange(0, std::memory_order_relaxed);
  b.closed = b.events.empty() && closed_.load(std::memory_order_acquire);
  return b;
}

}  // namespace pcivmm
