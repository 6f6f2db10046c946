// KVM tier: BAR memory through the vBAR mapper's slots, decode-off behaviour, the 14-GPU
// Linux-style sizing pass (per BAR as before 6.14, batched as 6.14+) under both policies, and
// refused placements.
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"
#include "tests/kvm/guest_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;

constexpr uint64_t kSeed = 0x1122334455667788ull;
constexpr uint64_t kEcam = 1;     // pci_enum arg bit 0
constexpr uint64_t kBatched = 4;  // pci_enum arg bit 2: Linux 6.14+'s batched BAR sizing

class BarMapperKvmTest : public ::testing::Test {
 protected:
  void CreateVm(pci::MapPolicy policy, int gpus) {
    platform::PciConfig pc;
    pc.bar_policy = policy;
    for (int i = 0; i < gpus; ++i) {
      pc.devices.push_back(pci::GpuLikeDevice(absl::StrFormat("gpu%d", i), i + 1));
    }
    vm_ = GuestVm::Create(pc);
    ASSERT_TRUE(vm_);
    gpu0_ = vm_->pci().bus().Find({0, 1, 0});
    auto bar0 = mapper().Backing(*gpu0_, 0);
    ASSERT_TRUE(bar0.ok());
    bar0_ = *bar0;
    std::memcpy(bar0_.data(), &kSeed, 8);
  }
  void Run(const char* guest, uint64_t arg) {
    kvm::StopReason r = vm_->Run(guest, arg);
    ASSERT_EQ(r.exit_code, 0) << r.detail;
  }
  uint64_t Report(const std::string& key) { return vm_->Report(key); }
  pci::BarMapper& mapper() { return vm_->pci().mapper(); }
  pci::BarMapStats DeviceTotal(const pci::PciFunction& f) {
    pci::BarMapStats t;
    for (const pci::BarSpec& b : f.spec().bars) {
      const pci::BarMapStats s = mapper().stats(f, b.index);
      t.maps += s.maps;
      t.unmaps += s.unmaps;
      t.moves += s.moves;
      t.conflicts += s.conflicts;
    }
    return t;
  }
  // Per GPU: the decode off/on pairs the guest reported, and what `policy` paid for them on
  // top of the hand-off maps.
  void ExpectSizingCost(pci::MapPolicy policy, uint64_t toggles_per_gpu) {
    for (const pci::PciFunction* f : vm_->pci().bus().functions()) {
      if (f->spec().slot == 0) continue;
      const uint64_t toggles = Report(absl::StrFormat("fn.%02d.0.cmd_writes", f->spec().slot)) / 2;
      const pci::BarMapStats t = DeviceTotal(*f);
      const uint64_t bars = 3;  // BAR0, BAR1, BAR3 are memory BARs
      const uint64_t paid = policy == pci::MapPolicy::kEager ? bars * toggles : 0u;
      SCOPED_TRACE(absl::StrFormat("%s %s", pci::MapPolicyName(policy), f->spec().name));
      EXPECT_EQ(toggles, toggles_per_gpu);
      EXPECT_EQ(t.unmaps, paid);
      EXPECT_EQ(t.maps, bars + paid);
      EXPECT_EQ(t.moves, 0u);
      EXPECT_EQ(t.conflicts, 0u);
    }
  }
  // What the walk found: every GPU's BAR and ROM addresses and sizes by report key.
  std::map<std::string, uint64_t> SizedBars() {
    std::map<std::string, uint64_t> found;
    for (const pci::PciFunction* f : vm_->pci().bus().functions()) {
      if (f->spec().slot == 0) continue;
      for (const char* bar : {"bar0", "bar1", "bar3", "rom"}) {
        for (const char* what : {"addr", "size"}) {
          const std::string key = absl::StrFormat("fn.%02d.0.%s.%s", f->spec().slot, bar, what);
          found[key] = Report(key);
        }
      }
    }
    return found;
  }
  std::unique_ptr<GuestVm> vm_;
  pci::PciFunction* gpu0_ = nullptr;
  absl::Span<uint8_t> bar0_;
};

TEST_F(BarMapperKvmTest, GuestReadsTheHostsPatternAndTheHostReadsTheGuests) {
  CreateVm(pci::MapPolicy::kEager, 1);
  Run("bar_test", 0);
  EXPECT_EQ(Report("bar0"), gpu0_->BarAddress(gpu0_->spec().bars[0]));
  EXPECT_EQ(Report("host_pattern"), kSeed);
  uint64_t written = 0;
  std::memcpy(&written, bar0_.data() + 8, 8);
  EXPECT_EQ(written, 0x5A5A5A5A5A5A5A5Aull);
}

TEST_F(BarMapperKvmTest, GuestReachesThe128GiBBarAbove4GiB) {
  CreateVm(pci::MapPolicy::kEager, 1);
  auto bar1 = mapper().Backing(*gpu0_, 1);
  ASSERT_TRUE(bar1.ok());
  ASSERT_EQ(bar1->size(), 128ull << 30);
  std::memcpy(bar1->data(), &kSeed, 8);
  Run("bar_test", 3);
  EXPECT_EQ(Report("bar1"), gpu0_->BarAddress(gpu0_->spec().bars[1]));
  EXPECT_GE(Report("bar1"), 4ull << 30);
  EXPECT_EQ(Report("bar1_host_pattern"), kSeed);
  EXPECT_EQ(Report("bar1_readback"), 0xC0FFEE00C0FFEE00ull);
  uint64_t written = 0;
  std::memcpy(&written, bar1->data() + 0x1000, 8);
  EXPECT_EQ(written, 0xC0FFEE00C0FFEE00ull);
}

TEST_F(BarMapperKvmTest, EagerDecodeOffMakesTheBarReadAllOnes) {
  CreateVm(pci::MapPolicy::kEager, 1);
  Run("bar_test", 1);
  EXPECT_EQ(Report("decode_on"), kSeed & 0xFFFFFFFF);
  EXPECT_EQ(Report("decode_off"), 0xFFFFFFFFu);
  EXPECT_EQ(Report("decode_on_again"), kSeed & 0xFFFFFFFF);
  EXPECT_EQ(mapper().stats(*gpu0_, 0).unmaps, 1u);
}

TEST_F(BarMapperKvmTest, DeferredKeepsTheSlotWhileDecodeIsOff) {
  CreateVm(pci::MapPolicy::kDeferred, 1);
  Run("bar_test", 1);
  EXPECT_EQ(Report("decode_off"), kSeed & 0xFFFFFFFF);  // the documented deferred trade-off
  EXPECT_EQ(DeviceTotal(*gpu0_).unmaps, 0u);
}

// The Hyper-V seed's pattern: 14 GPUs with 128 GiB BARs, decode on at hand-off, Linux's
// probe toggling decode around every BAR it sizes.
TEST_F(BarMapperKvmTest, SizingFourteenGpusCostsEagerEveryToggleAndDeferredNothing) {
  for (pci::MapPolicy policy : {pci::MapPolicy::kEager, pci::MapPolicy::kDeferred}) {
    CreateVm(policy, 14);
    Run("pci_enum", kEcam);
    EXPECT_EQ(Report("sizing"), 0u);
    ExpectSizingCost(policy, /*toggles_per_gpu=*/5);  // BAR0, BAR1, BAR3, BAR5 (absent), ROM
  }
}

// Linux 6.14+ ("PCI: Batch BAR sizing operations"): one decode off/on pair per function around
// all its BARs and its ROM, so eager pays one unmap and one map per memory BAR, and the walk
// finds the same BARs as the per-BAR one.
TEST_F(BarMapperKvmTest, BatchedSizingCostsEagerOnePairPerGpuAndFindsTheSameBars) {
  CreateVm(pci::MapPolicy::kDeferred, 14);
  Run("pci_enum", kEcam);
  const std::map<std::string, uint64_t> per_bar = SizedBars();
  for (pci::MapPolicy policy : {pci::MapPolicy::kEager, pci::MapPolicy::kDeferred}) {
    CreateVm(policy, 14);
    Run("pci_enum", kEcam | kBatched);
    EXPECT_EQ(Report("sizing"), 1u);
    ExpectSizingCost(policy, /*toggles_per_gpu=*/1);
    EXPECT_EQ(SizedBars(), per_bar);
  }
}

TEST_F(BarMapperKvmTest, BarMovedOntoTheEcamWindowIsRefusedAndCounted) {
  CreateVm(pci::MapPolicy::kEager, 1);
  Run("bar_test", 2);
  EXPECT_EQ(Report("bar0_moved"), pci::kEcamBase);
  EXPECT_EQ(Report("vendor_via_ecam"), 0x20B510DEu);  // ECAM still answers there
  EXPECT_EQ(Report("after_restore"), kSeed & 0xFFFFFFFF);
  EXPECT_EQ(mapper().stats(*gpu0_, 0).conflicts, 1u);
}

}  // namespace
}  // namespace pcivmm
