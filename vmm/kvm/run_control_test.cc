#include "vmm/kvm/run_control.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::kvm {
namespace {

TEST(RunControlTest, FirstStopWinsAndKicksOnce) {
  RunControl c;
  int kicks = 0;
  c.SetKicker([&kicks] { ++kicks; });
  EXPECT_FALSE(c.stop_requested());
  c.RequestStop({3, "first"});
  c.RequestStop({4, "second"});
  EXPECT_TRUE(c.stop_requested());
  EXPECT_EQ(kicks, 1);
  ASSERT_TRUE(c.reason());
  EXPECT_EQ(c.reason()->exit_code, 3);
}

// Stand-ins for vCPU threads: the loop of Vcpu::Run without KVM_RUN.
class FakeVcpus {
 public:
  FakeVcpus(RunControl& c, int n) : control_(c) {
    c.BeginRun(n);
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        while (!control_.stop_requested()) {
          if (control_.pause_requested()) {
            control_.Park();
            continue;
          }
          spins_.fetch_add(1);
          std::this_thread::yield();
        }
        control_.LeaveRun();
      });
    }
  }
  ~FakeVcpus() {
    control_.RequestStop({0, "test over"});
    for (auto& t : threads_) t.join();
  }
  uint64_t spins() const { return spins_.load(); }

 private:
  RunControl& control_;
  std::atomic<uint64_t> spins_{0};
  std::vector<std::thread> threads_;
};

TEST(RunControlTest, PauseParksEveryVcpuAndNothingMovesUntilResume) {
  RunControl c;
  std::atomic<int> kicks{0}, parked_calls{0};
  c.SetKicker([&kicks] { kicks.fetch_add(1); });
  c.SetParkedListener([&parked_calls] { parked_calls.fetch_add(1); });
  FakeVcpus vcpus(c, 3);
  c.RequestPause();
  ASSERT_TRUE(c.WaitParked(absl::Seconds(10)));
  EXPECT_TRUE(c.paused());
  EXPECT_EQ(parked_calls.load(), 1);
  EXPECT_EQ(kicks.load(), 1);
  const uint64_t frozen = vcpus.spins();
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(vcpus.spins(), frozen);
  c.Resume();
  EXPECT_FALSE(c.paused());
  while (vcpus.spins() == frozen) std::this_thread::yield();
}

TEST(RunControlTest, StopReleasesParkedVcpusAndEndsTheWait) {
  RunControl c;
  {
    FakeVcpus vcpus(c, 2);
    c.RequestPause();
    ASSERT_TRUE(c.WaitParked(absl::Seconds(10)));
    c.RequestStop({5, "stopped while paused"});
  }  // joins: the parked threads saw the stop
  EXPECT_FALSE(c.WaitParked(absl::Milliseconds(1)));
  EXPECT_EQ(c.reason()->exit_code, 5);
}

TEST(RunControlTest, PauseBeforeTheVcpusStartParksThemOnEntry) {
  RunControl c;
  c.RequestPause();
  std::atomic<int> parked_calls{0};
  c.SetParkedListener([&parked_calls] { parked_calls.fetch_add(1); });
  FakeVcpus vcpus(c, 2);
  ASSERT_TRUE(c.WaitParked(absl::Seconds(10)));
  EXPECT_EQ(vcpus.spins(), 0u);
  EXPECT_EQ(parked_calls.load(), 1);
}

}  // namespace
}  // namespace pcivmm::kvm
