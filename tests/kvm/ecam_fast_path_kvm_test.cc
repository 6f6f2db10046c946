// KVM tier: config-read storms through the three paths, exact exit counts; absent functions
// and cross-vCPU visibility through the read-only shadow.
#include <linux/kvm.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/kvm/guest_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;

constexpr uint64_t kStormReads = 100000;
constexpr uint64_t kPathEcam = 1ull << 32;

enum class Mode { kPio, kEcamTrap, kEcamFast };

class EcamFastPathKvmTest : public ::testing::Test {
 protected:
  kvm::StopReason Run(Mode mode, const char* guest, uint64_t arg, int vcpus = 1) {
    platform::PciConfig pc;
    pc.ecam_fast_path = mode == Mode::kEcamFast;
    pc.devices = {pci::GpuLikeDevice("gpu0", 1)};
    vm_ = GuestVm::Create(pc, vcpus);
    if (!vm_) return {-1, "setup failed"};
    return vm_->Run(guest, arg);
  }
  uint64_t Report(const std::string& key) { return vm_->Report(key); }
  uint64_t ConfigExits() { return platform::ConfigExitCount(vm_->stats(), vm_->pci()); }
  std::unique_ptr<GuestVm> vm_;
};

TEST_F(EcamFastPathKvmTest, PioStormCostsTwoExitsPerRead) {
  ASSERT_EQ(Run(Mode::kPio, "cfg_storm", kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("id"), 0x20B510DEu);
  EXPECT_EQ(ConfigExits(), 2 * Report("config_reads"));
  EXPECT_EQ(vm_->pci().bus().stats().accesses(pci::ConfigPath::kPio, mmio::Direction::kRead),
            Report("config_reads"));
}

TEST_F(EcamFastPathKvmTest, EcamTrapStormCostsOneExitPerRead) {
  ASSERT_EQ(Run(Mode::kEcamTrap, "cfg_storm", kPathEcam | kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("mismatches"), 0u);
  EXPECT_EQ(ConfigExits(), Report("config_reads"));
  EXPECT_EQ(vm_->stats().exits(KVM_EXIT_MMIO), Report("config_reads"));
}

TEST_F(EcamFastPathKvmTest, EcamFastStormCostsNoExits) {
  ASSERT_EQ(Run(Mode::kEcamFast, "cfg_storm", kPathEcam | kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("id"), 0x20B510DEu);
  EXPECT_EQ(Report("mismatches"), 0u);
  EXPECT_EQ(ConfigExits(), 0u);
  EXPECT_EQ(vm_->stats().exits(KVM_EXIT_MMIO), 0u);
  EXPECT_EQ(vm_->pci().bus().stats().accesses(pci::ConfigPath::kEcam, mmio::Direction::kRead), 0u);
}

TEST_F(EcamFastPathKvmTest, AbsentFunctionsReadAllOnesThroughTheShadow) {
  ASSERT_EQ(Run(Mode::kEcamFast, "cfg_storm", kPathEcam | 1).exit_code, 0);
  EXPECT_EQ(Report("absent_id"), 0xFFFFFFFFu);
  EXPECT_EQ(Report("absent_word"), 0xFFFFu);
  EXPECT_EQ(ConfigExits(), 0u);
}

TEST_F(EcamFastPathKvmTest, SizingWriteOnOneVcpuIsSeenByTheOtherWithoutExits) {
  kvm::StopReason r = Run(Mode::kEcamFast, "cfg_smp", 0, /*vcpus=*/2);
  ASSERT_EQ(r.exit_code, 0) << r.detail;
  EXPECT_EQ(Report("bar0_after_sizing"), 0xFF000000u);  // 16 MiB, 32-bit, non-prefetchable
  const int ecam = vm_->pci().ecam_region();
  EXPECT_EQ(vm_->stats().vcpu(0).mmio(ecam, mmio::Direction::kWrite), 1u);
  EXPECT_EQ(vm_->stats().vcpu(1).mmio(ecam, mmio::Direction::kRead), 0u);
}

}  // namespace
}  // namespace pcivmm
