#include "vmm/base/boot_profile.h"

#include <thread>

#include "gtest/gtest.h"

namespace pcivmm::base {
namespace {

TEST(BootProfileTest, StartsAtTheKernelsRecordOfTheProcessStart) {
  const BootProfile p;
  EXPECT_TRUE(p.start_from_kernel());
  BootProfile q;
  q.Mark(BootPhase::kMain);
  // This test process started before the profile was made: main() is at least 0 ms after it,
  // and (ticks of 10 ms) no later than the profile itself plus a tick.
  ASSERT_TRUE(q.ns(BootPhase::kMain).has_value());
  EXPECT_GE(*q.ns(BootPhase::kMain), 0);
}

TEST(BootProfileTest, MarkSpanKeepsTheFirstAndTheLatest) {
  BootProfile p;
  EXPECT_FALSE(p.ns(BootPhase::kFirstKvmRun).has_value());
  p.MarkSpan(BootPhase::kFirstConfigAccess, BootPhase::kLastConfigAccess);
  const int64_t first = *p.ns(BootPhase::kFirstConfigAccess);
  const int64_t last = *p.ns(BootPhase::kLastConfigAccess);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  p.MarkSpan(BootPhase::kFirstConfigAccess, BootPhase::kLastConfigAccess);
  EXPECT_EQ(*p.ns(BootPhase::kFirstConfigAccess), first);
  EXPECT_GE(*p.ns(BootPhase::kLastConfigAccess), last + 2'000'000);
}

TEST(BootProfileTest, FormatListsThePhasesReachedInOrderWithTheGuestUptime) {
  BootProfile p;
  p.Mark(BootPhase::kVmCreated);
  p.Mark(BootPhase::kFlagsParsed);
  p.SetGuestUptimeNs(1'234'500'000);
  const std::string s = p.Format();
  EXPECT_LT(s.find("flags_parsed"), s.find("vm_created"));
  EXPECT_EQ(s.find("first_kvm_run"), std::string::npos);
  EXPECT_NE(s.find("guest_uptime           1234.500"), std::string::npos) << s;
  EXPECT_EQ(BootPhaseName(BootPhase::kExit), "exit");
}

}  // namespace
}  // namespace pcivmm::base
