// KVM tier: config-read storms through the three paths, exact exit counts; absent functions
// and cross-vCPU visibility through the read-only shadow.
#include <linux/kvm.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "pci/config_access.h"
#include "vmm/machine.h"
#include "vmm/pci_platform.h"
#include "vmm/test_devices.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::ParseReports;

constexpr uint64_t kStormReads = 100000;
constexpr uint64_t kPathEcam = 1ull << 32;

enum class Mode { kPio, kEcamTrap, kEcamFast };

class EcamFastPathKvmTest : public ::testing::Test {
 protected:
  StopReason Run(Mode mode, const char* guest, uint64_t arg, int vcpus = 1) {
    MachineConfig mc;
    mc.console_echo = nullptr;
    mc.vcpus = vcpus;
    auto m = Machine::Create(mc);
    EXPECT_TRUE(m.ok()) << m.status();
    machine_ = std::move(*m);
    PciConfig pc;
    pc.ecam_fast_path = mode == Mode::kEcamFast;
    pc.devices.push_back(GpuLikeDevice("gpu0", 1));
    auto p = PciPlatform::Attach(*machine_, pc);
    EXPECT_TRUE(p.ok()) << p.status();
    pci_ = std::move(*p);
    EXPECT_TRUE(
        machine_->LoadTestGuest(std::string(PCIVMM_GUEST_DIR) + "/" + guest + ".bin", arg).ok());
    StopReason r = machine_->Run();
    reports_ = ParseReports(machine_->console().output());
    return r;
  }
  uint64_t Report(const std::string& key) {
    EXPECT_TRUE(reports_.count(key)) << "no report " << key;
    return reports_[key];
  }
  uint64_t ConfigExits() { return ConfigExitCount(machine_->stats(), *pci_); }
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<PciPlatform> pci_;
  std::map<std::string, uint64_t> reports_;
};

TEST_F(EcamFastPathKvmTest, PioStormCostsTwoExitsPerRead) {
  ASSERT_EQ(Run(Mode::kPio, "cfg_storm", kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("id"), 0x20B510DEu);
  EXPECT_EQ(ConfigExits(), 2 * Report("config_reads"));
  EXPECT_EQ(pci_->bus().stats().accesses(ConfigPath::kPio, Direction::kRead),
            Report("config_reads"));
}

TEST_F(EcamFastPathKvmTest, EcamTrapStormCostsOneExitPerRead) {
  ASSERT_EQ(Run(Mode::kEcamTrap, "cfg_storm", kPathEcam | kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("mismatches"), 0u);
  EXPECT_EQ(ConfigExits(), Report("config_reads"));
  EXPECT_EQ(machine_->stats().exits(KVM_EXIT_MMIO), Report("config_reads"));
}

TEST_F(EcamFastPathKvmTest, EcamFastStormCostsNoExits) {
  ASSERT_EQ(Run(Mode::kEcamFast, "cfg_storm", kPathEcam | kStormReads).exit_code, 0);
  EXPECT_EQ(Report("storm_reads"), kStormReads);
  EXPECT_EQ(Report("id"), 0x20B510DEu);
  EXPECT_EQ(Report("mismatches"), 0u);
  EXPECT_EQ(ConfigExits(), 0u);
  EXPECT_EQ(machine_->stats().exits(KVM_EXIT_MMIO), 0u);
  EXPECT_EQ(pci_->bus().stats().accesses(ConfigPath::kEcam, Direction::kRead), 0u);
}

TEST_F(EcamFastPathKvmTest, AbsentFunctionsReadAllOnesThroughTheShadow) {
  ASSERT_EQ(Run(Mode::kEcamFast, "cfg_storm", kPathEcam | 1).exit_code, 0);
  EXPECT_EQ(Report("absent_id"), 0xFFFFFFFFu);
  EXPECT_EQ(Report("absent_word"), 0xFFFFu);
  EXPECT_EQ(ConfigExits(), 0u);
}

TEST_F(EcamFastPathKvmTest, SizingWriteOnOneVcpuIsSeenByTheOtherWithoutExits) {
  StopReason r = Run(Mode::kEcamFast, "cfg_smp", 0, /*vcpus=*/2);
  ASSERT_EQ(r.exit_code, 0) << r.detail;
  EXPECT_EQ(Report("bar0_after_sizing"), 0xFF000000u);  // 16 MiB, 32-bit, non-prefetchable
  const ExitStats& s = machine_->stats();
  EXPECT_EQ(s.vcpu(0).mmio(pci_->ecam_region(), Direction::kWrite), 1u);
  EXPECT_EQ(s.vcpu(1).mmio(pci_->ecam_region(), Direction::kRead), 0u);
}

}  // namespace
}  // namespace pcivmm
