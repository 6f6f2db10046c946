#include "vmm/kvm/exit_stats.h"

#include <linux/kvm.h>

#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::kvm {
namespace {

TEST(ExitStatsTest, SumsAcrossVcpus) {
  ExitStats s(2);
  s.vcpu(0).CountExit(KVM_EXIT_IO);
  s.vcpu(1).CountExit(KVM_EXIT_IO);
  s.vcpu(1).CountExit(KVM_EXIT_MMIO);
  s.vcpu(0).CountPio(0xCF8, mmio::Direction::kWrite);
  s.vcpu(1).CountPio(0xCF8, mmio::Direction::kWrite);
  s.vcpu(1).CountMmio(3, mmio::Direction::kRead);
  EXPECT_EQ(s.exits(KVM_EXIT_IO), 2u);
  EXPECT_EQ(s.total_exits(), 3u);
  EXPECT_EQ(s.pio(0xCF8, mmio::Direction::kWrite), 2u);
  EXPECT_EQ(s.pio(0xCF8, mmio::Direction::kRead), 0u);
  EXPECT_EQ(s.mmio(3, mmio::Direction::kRead), 1u);
  EXPECT_EQ(s.mmio(mmio::Bus::kUnclaimed, mmio::Direction::kRead), 0u);
}

TEST(ExitStatsTest, TouchedPortsAreListedOnceInOrderAcrossVcpus) {
  ExitStats s(2);
  s.vcpu(1).CountPio(0xFFFF, mmio::Direction::kWrite);
  s.vcpu(0).CountPio(0xCFC, mmio::Direction::kRead);
  s.vcpu(1).CountPio(0xCFC, mmio::Direction::kRead);
  s.vcpu(0).CountPio(0x0, mmio::Direction::kWrite);
  std::vector<std::pair<uint16_t, mmio::Direction>> seen;
  s.ForEachTouchedPort([&seen](uint16_t port, mmio::Direction d) { seen.emplace_back(port, d); });
  const std::vector<std::pair<uint16_t, mmio::Direction>> want = {
      {0x0, mmio::Direction::kWrite},
      {0xCFC, mmio::Direction::kRead},
      {0xFFFF, mmio::Direction::kWrite}};
  EXPECT_EQ(seen, want);
}

TEST(ExitStatsTest, OutOfRangeReasonsAndRegionsAreSafe) {
  VcpuExitStats s;
  s.CountExit(1000);
  EXPECT_EQ(s.exits(1000), 0u);
  EXPECT_EQ(s.mmio(mmio::Bus::kMaxRegions, mmio::Direction::kRead), 0u);
  EXPECT_EQ(s.mmio(-5, mmio::Direction::kRead), 0u);
}

TEST(ExitStatsTest, LastExitReasonIsTheLatestPerVcpu) {
  ExitStats s(2);
  EXPECT_EQ(s.vcpu(0).last_exit_reason(), VcpuExitStats::kNoExit);
  s.vcpu(0).CountExit(KVM_EXIT_IO);
  s.vcpu(0).CountExit(KVM_EXIT_MMIO);
  s.vcpu(1).CountExit(KVM_EXIT_HLT);
  EXPECT_EQ(s.vcpu(0).last_exit_reason(), uint32_t{KVM_EXIT_MMIO});
  EXPECT_EQ(s.vcpu(1).last_exit_reason(), uint32_t{KVM_EXIT_HLT});
}

TEST(ExitStatsTest, LastExitReasonKeepsAnOutOfRangeReasonAsReported) {
  VcpuExitStats s;
  s.CountExit(1000);
  EXPECT_EQ(s.last_exit_reason(), 1000u);
  EXPECT_STREQ(ExitReasonName(s.last_exit_reason()), "OTHER");
}

// One writer per vCPU, a reader summing concurrently: exact once the writers are done.
TEST(ExitStatsTest, ConcurrentWritersAreExact) {
  ExitStats s(2);
  constexpr int kN = 100000;
  auto writer = [&s](int v) {
    for (int i = 0; i < kN; ++i) s.vcpu(v).CountPio(0x510, mmio::Direction::kWrite);
  };
  std::thread a(writer, 0), b(writer, 1);
  uint64_t seen = 0;
  while (seen < 2 * kN) seen = s.pio(0x510, mmio::Direction::kWrite);
  a.join();
  b.join();
  EXPECT_EQ(s.pio(0x510, mmio::Direction::kWrite), 2u * kN);
}

}  // namespace
}  // namespace pcivmm::kvm
