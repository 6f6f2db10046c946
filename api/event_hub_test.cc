#include "api/event_hub.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "vmm/devices/boot_marker.h"

namespace pcivmm::api {
namespace {

constexpr uint32_t kBoot = EventKindBit(EventKind::kBootMarker);

TEST(EventRingTest, FifoWithCapacityRoundedToAPowerOfTwo) {
  EventRing<int> ring(5);
  EXPECT_EQ(ring.capacity(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(ring.TryPush(i));
  EXPECT_FALSE(ring.TryPush(8));
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ring.TryPop(), i);
  EXPECT_FALSE(ring.TryPop());
  EXPECT_TRUE(ring.TryPush(9));  // the next lap
  EXPECT_EQ(ring.TryPop(), 9);
}

TEST(EventHubTest, DeliversOnlyTheSubscribedKinds) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, 16);
  ASSERT_TRUE(sub.ok());
  hub.PublishState(VmState::kRunning, 0);
  hub.PublishBootMarker(77, 1);
  auto batch = (*sub)->Next(16, absl::ZeroDuration());
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].kind, EventKind::kBootMarker);
  EXPECT_EQ(batch.events[0].boot_ns, 77u);
  EXPECT_EQ(batch.events[0].vcpu, 1);
  EXPECT_EQ(batch.events[0].sequence, 2u);  // the state event took sequence 1
}

TEST(EventHubTest, ABootTimeoutReportIsKeptByTheHubAndFoundByItsIndex) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(EventKindBit(EventKind::kBootTimeout), 16);
  ASSERT_TRUE(sub.ok());
  hub.PublishBootTimeout({absl::Seconds(1), "first", {{0, 0x1000, 2, 5}}});
  hub.PublishBootTimeout({absl::Seconds(2), "second", {}});
  auto batch = (*sub)->Next(16, absl::ZeroDuration());
  ASSERT_EQ(batch.events.size(), 2u);
  EXPECT_EQ(batch.events[0].kind, EventKind::kBootTimeout);
  auto first = hub.boot_timeout_report(batch.events[0].report);
  auto second = hub.boot_timeout_report(batch.events[1].report);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->last_console_line, "first");
  ASSERT_EQ(first->vcpus.size(), 1u);
  EXPECT_EQ(first->vcpus[0].rip, 0x1000u);
  EXPECT_EQ(second->timeout, absl::Seconds(2));
  EXPECT_FALSE(hub.boot_timeout_report(7).has_value());
}

TEST(EventHubTest, AFullBufferDropsAndCountsWhatDidNotFit) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, 4);
  ASSERT_TRUE(sub.ok());
  for (uint64_t i = 0; i < 10; ++i) hub.PublishBootMarker(i, 0);
  auto batch = (*sub)->Next(100, absl::ZeroDuration());
  ASSERT_EQ(batch.events.size(), 4u);
  EXPECT_EQ(batch.events[3].boot_ns, 3u);  // the oldest are kept, the newest dropped
  EXPECT_EQ(batch.dropped, 6u);
  EXPECT_EQ((*sub)->Next(100, absl::ZeroDuration()).dropped, 0u);  // told once
}

TEST(EventHubTest, ASleepingSubscriberWakesOnPublish) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, 16);
  ASSERT_TRUE(sub.ok());
  std::thread producer([&hub] {
    absl::SleepFor(absl::Milliseconds(50));
    hub.PublishBootMarker(5, 0);
  });
  const absl::Time start = absl::Now();
  auto batch = (*sub)->Next(16, absl::Seconds(20));
  producer.join();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(EventHubTest, AQuietSubscriberTimesOutEmpty) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, 16);
  ASSERT_TRUE(sub.ok());
  auto batch = (*sub)->Next(16, absl::Milliseconds(20));
  EXPECT_TRUE(batch.events.empty());
  EXPECT_FALSE(batch.closed);
}

TEST(EventHubTest, CloseEndsSubscriptionsAfterTheirEventsAndRefusesNewOnes) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, 16);
  ASSERT_TRUE(sub.ok());
  hub.PublishBootMarker(1, 0);
  hub.Close();
  auto batch = (*sub)->Next(16, absl::Seconds(20));
  EXPECT_EQ(batch.events.size(), 1u);
  EXPECT_FALSE(batch.closed);
  EXPECT_TRUE((*sub)->Next(16, absl::Seconds(20)).closed);
  EXPECT_EQ(hub.Subscribe(kBoot, 16).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(EventHubTest, SubscribersAreBoundedAndSlotsAreReused) {
  EventHub hub(devices::MonotonicNowNs());
  std::vector<std::unique_ptr<EventHub::Subscription>> subs;
  for (int i = 0; i < EventHub::kMaxSubscribers; ++i) {
    auto s = hub.Subscribe(kBoot, 2);
    ASSERT_TRUE(s.ok());
    subs.push_back(std::move(*s));
  }
  EXPECT_EQ(hub.Subscribe(kBoot, 2).status().code(), absl::StatusCode::kResourceExhausted);
  subs.erase(subs.begin() + 3);
  auto again = hub.Subscribe(kBoot, 2);
  ASSERT_TRUE(again.ok());
  hub.PublishBootMarker(9, 0);
  EXPECT_EQ((*again)->Next(2, absl::ZeroDuration()).events.size(), 1u);
  for (auto& s : subs) EXPECT_EQ(s->Next(2, absl::ZeroDuration()).events.size(), 1u);
}

TEST(EventHubTest, ConfigAccessesArePublishedOnlyWhileSomeoneWantsThem) {
  EventHub hub(devices::MonotonicNowNs());
  hub.OnConfigAccess({});
  EXPECT_EQ(hub.published(), 0u);
  {
    auto sub = hub.Subscribe(EventKindBit(EventKind::kConfigAccess), 4);
    ASSERT_TRUE(sub.ok());
    hub.OnConfigAccess(
        {pci::ConfigPath::kEcam, mmio::Direction::kWrite, pci::Bdf{0, 1, 0}, 4, 2, 6, 0});
    auto batch = (*sub)->Next(4, absl::ZeroDuration());
    ASSERT_EQ(batch.events.size(), 1u);
    EXPECT_EQ(batch.events[0].config.reg, 4);
    EXPECT_EQ(batch.events[0].config.value, 6u);
  }
  hub.OnConfigAccess({});
  EXPECT_EQ(hub.published(), 1u);
}

// Four producer threads, a consumer draining concurrently, subscribing and unsubscribing
// others meanwhile: with room in the buffer nothing is lost, and each producer's events
// arrive in its order.
TEST(EventHubTest, ConcurrentProducersLoseNothingWhenThereIsRoom) {
  EventHub hub(devices::MonotonicNowNs());
  auto sub = hub.Subscribe(kBoot, EventHub::kMaxBuffer);
  ASSERT_TRUE(sub.ok());
  constexpr int kThreads = 4;
  constexpr uint64_t kEach = 10000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&hub, t] {
      for (uint64_t i = 1; i <= kEach; ++i) hub.PublishBootMarker(i, t);
    });
  }
  std::thread churn([&hub] {
    for (int i = 0; i < 200; ++i) (void)hub.Subscribe(kBoot, 2);
  });
  std::vector<uint64_t> last(kThreads, 0);
  uint64_t got = 0, dropped = 0;
  while (got < kThreads * kEach) {
    auto batch = (*sub)->Next(1024, absl::Milliseconds(100));
    dropped += batch.dropped;
    for (const EventRecord& r : batch.events) {
      EXPECT_EQ(r.boot_ns, last[static_cast<size_t>(r.vcpu)] + 1);
      last[static_cast<size_t>(r.vcpu)] = r.boot_ns;
      ++got;
    }
    if (dropped > 0) break;
  }
  for (auto& p : producers) p.join();
  churn.join();
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(got, kThreads * kEach);
}

}  // namespace
}  // namespace pcivmm::api
