// KVM tier: the enumeration guest walks bus 0 through PIO and through the trapping ECAM
// window; exits and config counters must equal the guest's own access counts exactly.
#include <linux/kvm.h>

#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "pci/config_access.h"
#include "vmm/machine.h"
#include "vmm/pci_platform.h"
#include "vmm/test_devices.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::ParseReports;

class PciKvmTest : public ::testing::Test {
 protected:
  void Boot(bool pio_enabled, uint64_t path_arg, int gpus = 2, bool fast = false) {
    MachineConfig mc;
    mc.console_echo = nullptr;
    auto m = Machine::Create(mc);
    ASSERT_TRUE(m.ok()) << m.status();
    machine_ = std::move(*m);
    PciConfig pc;
    pc.pio_enabled = pio_enabled;
    pc.ecam_fast_path = fast;
    for (int i = 0; i < gpus; ++i) pc.devices.push_back(GpuLikeDevice("gpu", i + 1));
    auto p = PciPlatform::Attach(*machine_, pc);
    ASSERT_TRUE(p.ok()) << p.status();
    pci_ = std::move(*p);
    ASSERT_TRUE(
        machine_->LoadTestGuest(std::string(PCIVMM_GUEST_DIR) + "/pci_enum.bin", path_arg).ok());
    StopReason r = machine_->Run();
    ASSERT_EQ(r.exit_code, 0) << r.detail;
    reports_ = ParseReports(machine_->console().output());
  }
  uint64_t Report(const std::string& key) {
    EXPECT_TRUE(reports_.count(key)) << "no report " << key;
    return reports_[key];
  }
  uint64_t Accesses() { return Report("config_reads") + Report("config_writes"); }

  // The guest found exactly the configured functions, with the firmware's BARs.
  void ExpectFoundConfiguredDevices() {
    EXPECT_EQ(Report("functions"), pci_->bus().functions().size());
    for (const PciFunction* f : pci_->bus().functions()) {
      const DeviceSpec& s = f->spec();
      const std::string fn = absl::StrFormat("fn.%02d.%d.", s.slot, s.function);
      EXPECT_EQ(Report(fn + "id"), uint64_t{s.vendor_id} | uint64_t{s.device_id} << 16);
      EXPECT_EQ(Report(fn + "class"), s.class_code);
      for (const BarSpec& b : s.bars) {
        EXPECT_EQ(Report(fn + absl::StrFormat("bar%d.addr", b.index)), f->BarAddress(b)) << fn;
        EXPECT_EQ(Report(fn + absl::StrFormat("bar%d.size", b.index)), b.size) << fn;
      }
      if (s.rom_size != 0) {
        EXPECT_EQ(Report(fn + "rom.size"), s.rom_size);
        EXPECT_EQ(Report(fn + "rom.addr"), f->RomAddress());
      }
    }
  }

  std::unique_ptr<Machine> machine_;
  std::unique_ptr<PciPlatform> pci_;
  std::map<std::string, uint64_t> reports_;
};

uint64_t DataPortExits(const ExitStats& s) {
  uint64_t n = 0;
  for (uint16_t p = kPioConfigDataPort; p < kPioConfigDataPort + 4; ++p) {
    n += s.pio(p, Direction::kRead) + s.pio(p, Direction::kWrite);
  }
  return n;
}

TEST_F(PciKvmTest, PioEnumerationFindsTheDevicesWithTwoExitsPerAccess) {
  Boot(/*pio_enabled=*/true, /*path_arg=*/0);
  ExpectFoundConfiguredDevices();
  const ExitStats& s = machine_->stats();
  const ConfigStats& c = pci_->bus().stats();
  EXPECT_EQ(c.accesses(ConfigPath::kPio, Direction::kRead), Report("config_reads"));
  EXPECT_EQ(c.accesses(ConfigPath::kPio, Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(s.pio(kPioConfigAddressPort, Direction::kWrite), Accesses());
  EXPECT_EQ(DataPortExits(s), Accesses());
  EXPECT_EQ(s.mmio(pci_->ecam_region(), Direction::kRead), 0u);
}

TEST_F(PciKvmTest, EcamEnumerationFindsTheDevicesWithOneExitPerAccess) {
  Boot(/*pio_enabled=*/true, /*path_arg=*/1);
  ExpectFoundConfiguredDevices();
  const ExitStats& s = machine_->stats();
  const ConfigStats& c = pci_->bus().stats();
  EXPECT_EQ(c.accesses(ConfigPath::kEcam, Direction::kRead), Report("config_reads"));
  EXPECT_EQ(c.accesses(ConfigPath::kEcam, Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(s.mmio(pci_->ecam_region(), Direction::kRead), Report("config_reads"));
  EXPECT_EQ(s.mmio(pci_->ecam_region(), Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(s.exits(KVM_EXIT_MMIO), Accesses());
  EXPECT_EQ(s.pio(kPioConfigAddressPort, Direction::kWrite), 0u);
  EXPECT_EQ(Report("fn.01.0.ext_caps"), 1u);  // only ECAM reaches extended space
}

TEST_F(PciKvmTest, FastPathEnumerationFindsTheSameDevicesAndOnlyWritesExit) {
  Boot(/*pio_enabled=*/true, /*path_arg=*/1, /*gpus=*/2, /*fast=*/true);
  ExpectFoundConfiguredDevices();
  const ExitStats& s = machine_->stats();
  EXPECT_EQ(s.mmio(pci_->ecam_region(), Direction::kRead), 0u);
  EXPECT_EQ(s.mmio(pci_->ecam_region(), Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(pci_->bus().stats().accesses(ConfigPath::kEcam, Direction::kWrite),
            Report("config_writes"));
  EXPECT_EQ(s.exits(KVM_EXIT_MMIO), Report("config_writes"));
}

TEST_F(PciKvmTest, LinuxStyleSizingTogglesDecodeAroundEveryBarProbe) {
  Boot(/*pio_enabled=*/true, /*path_arg=*/1);
  for (const PciFunction* f : pci_->bus().functions()) {
    if (f->spec().slot == 0) continue;
    const Bdf bdf{0, static_cast<uint8_t>(f->spec().slot), 0};
    // Probes of BAR0, BAR1 (64-bit), BAR3 (64-bit), BAR5 (empty) and the ROM, each with
    // decode turned off and back on: 10 command writes.
    const uint64_t writes = pci_->bus().stats().register_accesses(
        ConfigPath::kEcam, Direction::kWrite, bdf, cfg::kCommand);
    EXPECT_EQ(writes, Report(absl::StrFormat("fn.%02d.0.cmd_writes", f->spec().slot)));
    EXPECT_EQ(writes, 10u);
    EXPECT_EQ(f->Read(cfg::kCommand, 2) & cfg::kCommandMemory, cfg::kCommandMemory);
  }
}

TEST_F(PciKvmTest, DisabledPioMakesTheType1ScanFindNothing) {
  Boot(/*pio_enabled=*/false, /*path_arg=*/0);
  EXPECT_EQ(Report("functions"), 0u);
  EXPECT_EQ(pci_->bus().stats().accesses(ConfigPath::kPio, Direction::kRead), 0u);
  // Every access still exits twice; the decoder answers all-ones without reaching the bus.
  EXPECT_EQ(machine_->stats().pio(kPioConfigAddressPort, Direction::kWrite), Accesses());
}

}  // namespace
}  // namespace pcivmm
