// KVM tier: the enumeration guest numbers the buses behind a PCIe switch itself (as Linux does
// when it assigns buses) and walks them through each config path; the VMM routes every access
// by the numbers the guest wrote, the ECAM fast path follows them, and the exits equal the
// guest's own access counts.
#include <string>

#include "gtest/gtest.h"
#include "tests/kvm/guest_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;

constexpr uint64_t kEcam = 1, kQuiet = 2, kBridges = 8;
constexpr uint64_t kFirstBus = 0x10;  // the guest numbers from 0x10, firmware numbered from 1

// 00:01.0 root port -> switch upstream port -> downstream ports at devices 0 and 1 of the
// switch's bus -> a GPU-like device behind each.
platform::PciConfig Switch(bool pio, bool fast) {
  platform::PciConfig pc;
  pc.bus_count = 32;
  pc.pio_enabled = pio;
  pc.ecam_fast_path = fast;
  pc.bar_policy = pci::MapPolicy::kDeferred;
  auto gpu = [](const char* name, const char* port) {
    pci::DeviceSpec d = pci::GpuLikeDevice(name, 0, 1ull << 30);
    d.parent = port;
    return d;
  };
  pc.devices = {pci::RootPortDevice("rp", 1, 0, false),
                pci::SwitchUpstreamDevice("up", "rp"),
                pci::SwitchDownstreamDevice("down0", "up", 0, 1, false),
                pci::SwitchDownstreamDevice("down1", "up", 1, 2, false),
                gpu("gpu0", "down0"),
                gpu("gpu1", "down1")};
  return pc;
}

class TopologyKvmTest : public ::testing::TestWithParam<int> {
 protected:
  // 0: PIO, 1: ECAM trapping, 2: ECAM fast path (PIO off).
  void Walk() {
    const int mode = GetParam();
    vm_ = GuestVm::Create(Switch(mode == 0, mode == 2));
    ASSERT_TRUE(vm_);
    const uint64_t arg = (mode == 0 ? 0 : kEcam) | kQuiet | kBridges | kFirstBus << 8;
    kvm::StopReason r = vm_->Run("pci_enum", arg);
    ASSERT_EQ(r.exit_code, 0) << r.detail;
  }
  const pci::PciFunction& Named(const std::string& name) {
    for (const pci::PciFunction* f : vm_->pci().bus().functions()) {
      if (f->spec().name == name) return *f;
    }
    ADD_FAILURE() << "no function " << name;
    return *vm_->pci().bus().functions().front();
  }
  std::unique_ptr<GuestVm> vm_;
};

TEST_P(TopologyKvmTest, TheGuestNumbersTheSwitchAndFindsEveryFunctionWhereItPutThem) {
  Walk();
  EXPECT_EQ(vm_->Report("functions"), vm_->pci().bus().functions().size());  // 7 with 00:00.0
  EXPECT_EQ(vm_->Report("buses"), 4u);  // the port's, the switch's, one per downstream port
  auto at = [&](const char* name) { return vm_->pci().bus().AddressOf(Named(name)); };
  EXPECT_EQ(at("up"), (pci::Bdf{0x10, 0, 0}));
  EXPECT_EQ(at("down1"), (pci::Bdf{0x11, 1, 0}));
  EXPECT_EQ(at("gpu0"), (pci::Bdf{0x12, 0, 0}));
  EXPECT_EQ(at("gpu1"), (pci::Bdf{0x13, 0, 0}));
  const pci::BridgeBuses rp = pci::DecodeBridgeBuses(Named("rp").bridge_registers());
  EXPECT_EQ(rp.secondary, 0x10);
  EXPECT_EQ(rp.subordinate, 0x13);
}

TEST_P(TopologyKvmTest, EveryAccessExitsOnceOrTwiceOrNotAtAll) {
  Walk();
  const pci::ConfigStats& c = vm_->pci().bus().stats();
  const uint64_t reads = vm_->Report("config_reads"), writes = vm_->Report("config_writes");
  const int ecam = vm_->pci().ecam_region();
  const auto& stats = vm_->stats();
  switch (GetParam()) {
    case 0:  // PIO: the address latch and the data port, each an exit
      EXPECT_EQ(c.accesses(pci::ConfigPath::kPio, mmio::Direction::kRead), reads);
      EXPECT_EQ(c.accesses(pci::ConfigPath::kPio, mmio::Direction::kWrite), writes);
      EXPECT_EQ(stats.pio(0xCF8, mmio::Direction::kWrite), reads + writes);  // one latch each
      break;
    case 1:  // trapping ECAM: one exit per access
      EXPECT_EQ(stats.mmio(ecam, mmio::Direction::kRead), reads);
      EXPECT_EQ(stats.mmio(ecam, mmio::Direction::kWrite), writes);
      break;
    case 2:  // the fast path: reads never exit, even on the buses the guest renumbered
      EXPECT_EQ(stats.mmio(ecam, mmio::Direction::kRead), 0u);
      EXPECT_EQ(stats.mmio(ecam, mmio::Direction::kWrite), writes);
      break;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Paths, TopologyKvmTest, ::testing::Values(0, 1, 2), [](const ::testing::TestParamInfo<int>& p) {
      return std::string(p.param == 0 ? "Pio" : p.param == 1 ? "EcamTrap" : "EcamFastPath");
    });

}  // namespace
}  // namespace pcivmm
