// The event feed behind WatchEvents: producers (vCPU threads, the mapper, the control
// thread) publish without ever blocking; each subscriber has its own bounded buffer and
// loses what does not fit, counted.
#ifndef PCIVMM_API_EVENT_HUB_H_
#define PCIVMM_API_EVENT_HUB_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/event_ring.h"
#include "api/vm_state.h"
#include "pci/bar_mapper.h"
#include "pci/pci_bus.h"
#include "vmm/base/unique_fd.h"
#include "vmm/platform/boot_watchdog.h"

namespace pcivmm::api {

enum class EventKind : uint8_t {
  kBarMapping = 0,
  kConfigAccess = 1,
  kBootMarker = 2,
  kStateChange = 3,
  kBootTimeout = 4
};
inline constexpr uint32_t EventKindBit(EventKind kind) { return 1u << static_cast<int>(kind); }
inline constexpr uint32_t kAllEventKinds = 0x1F;

// One event, trivially copyable (it lives in the rings). Only the member of `kind` is set.
struct EventRecord {
  EventKind kind = EventKind::kStateChange;
  uint64_t sequence = 0;  // 1, 2, ... per hub
  uint64_t time_ns = 0;   // since the hub's start
  pci::MapEvent map{};
  pci::ConfigAccess config{};
  uint64_t boot_ns = 0;
  int32_t vcpu = 0;  // boot marker
  VmState state = VmState::kCreated;
  int32_t exit_code = 0;
  uint32_t report = 0;  // boot timeout: its index for EventHub::boot_timeout_report()
};

class EventHub : public pci::MapEventSink, public pci::ConfigTracer {
 public:
  static constexpr int kMaxSubscribers = 16;
  static constexpr size_t kMaxBuffer = 65536;
  static constexpr size_t kDefaultBuffer = 4096;

  class Subscription;

  // `start_ns`: CLOCK_MONOTONIC time that event times count from.
  explicit EventHub(uint64_t start_ns);
  ~EventHub() override;
  EventHub(const EventHub&) = delete;
  EventHub& operator=(const EventHub&) = delete;

  // A new subscriber for the kinds in `kinds` (EventKindBit mask) with room for `buffer`
  // events (rounded up to a power of two). ResourceExhausted beyond kMaxSubscribers,
  // FailedPrecondition once closed. The subscription must not outlive the hub.
  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(uint32_t kinds, size_t buffer);

  // Producers: lock-free, never wait for a subscriber.
  void OnMapEvent(const pci::MapEvent& event) override;
  void OnConfigAccess(const pci::ConfigAccess& access) override;
  void PublishBootMarker(uint64_t boot_ns, int vcpu);
  void PublishState(VmState state, int exit_code);
  // The boot watchdog's report. It does not fit a ring slot: the hub keeps it (one per
  // timeout, so a few at most) and the record carries its index. Takes a lock; not for vCPUs.
  void PublishBootTimeout(platform::BootTimeoutReport report);
  std::optional<platform::BootTimeoutReport> boot_timeout_report(uint32_t index) const;

  // Ends every subscription (their Next() reports closed once drained) and refuses new ones.
  void Close();
  uint64_t published() const { return sequence_.load(std::memory_order_relaxed); }
  // Subscriptions open now (a test publishes once its watcher is in).
  int subscribers() const { return std::popcount(active_.load(std::memory_order_acquire)); }
  uint64_t start_ns() const { return start_ns_; }

 private:
  struct Slot {
    std::atomic<Subscription*> subscription{nullptr};
    std::atomic<uint32_t> pins{0};  // producers inside this slot right now
  };
  void Publish(EventRecord record);
  void Unsubscribe(int slot);

  const uint64_t start_ns_;
  std::atomic<uint64_t> sequence_{0};
  std::atomic<uint32_t> active_{0};         // bit per slot with a subscription
  std::atomic<int> config_subscribers_{0};  // skip config tracing when nobody listens
  std::array<Slot, kMaxSubscribers> slots_;
  absl::Mutex mu_;  // subscribe, unsubscribe, close; producers never take it
  uint32_t used_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  mutable absl::Mutex reports_mu_;  // never held with mu_
  std::vector<platform::BootTimeoutReport> reports_ ABSL_GUARDED_BY(reports_mu_);
};

// One subscriber's buffer. Next() is called by one thread (the stream's).
class EventHub::Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  struct Batch {
    std::vector<EventRecord> events;
    uint64_t dropped = 0;  // lost since the previous batch (the buffer was full)
    bool closed = false;   // the hub closed and everything was delivered
  };
  // Takes up to `max` buffered events, waiting up to `timeout` when there are none.
  Batch Next(size_t max, absl::Duration timeout);
  // Ends this subscription early, from any thread: its slot is free for a new subscriber at
  // once, and its Next() returns and reports closed once drained (used to reap the stream of a
  // client that went away).
  void Close();
  size_t capacity() const { return ring_.capacity(); }

 private:
  friend class EventHub;
  Subscription(EventHub* hub, int slot, uint32_t kinds, size_t buffer, base::UniqueFd wake);
  void Offer(const EventRecord& record);
  void MarkClosed();  // Next() reports closed once drained
  void Leave();       // gives the slot back, once
  void Wake(bool force);
  void Drain(size_t max, std::vector<EventRecord>* out);
  void WaitForWake(absl::Duration timeout);

  EventRing<EventRecord> ring_;
  EventHub* const hub_;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> offers_{0};  // 2 per offer; bit 0: the consumer sleeps
  const int slot_;
  const uint32_t kinds_;
  base::UniqueFd wake_;  // eventfd: written by a producer when the consumer sleeps
  std::atomic<bool> closed_{false};
  std::atomic<bool> subscribed_{true};  // holds slot_ in the hub
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_EVENT_HUB_H_
