// KVM tier: the enumeration guest walks bus 0 through PIO and through the trapping ECAM
// window; exits and config counters must equal the guest's own access counts exactly.
#include <linux/kvm.h>

#include <string>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "pci/access/pio_cf8.h"
#include "tests/kvm/guest_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;

constexpr uint64_t kPio = 0;
constexpr uint64_t kEcam = 1;

class PciKvmTest : public ::testing::Test {
 protected:
  void Boot(uint64_t path, bool pio_enabled = true, bool fast = false) {
    platform::PciConfig pc;
    pc.pio_enabled = pio_enabled;
    pc.ecam_fast_path = fast;
    pc.devices = {pci::GpuLikeDevice("gpu0", 1), pci::GpuLikeDevice("gpu1", 2)};
    vm_ = GuestVm::Create(pc);
    ASSERT_TRUE(vm_);
    kvm::StopReason r = vm_->Run("pci_enum", path);
    ASSERT_EQ(r.exit_code, 0) << r.detail;
  }
  uint64_t Report(const std::string& key) { return vm_->Report(key); }
  uint64_t Accesses() { return Report("config_reads") + Report("config_writes"); }
  const pci::ConfigStats& config() { return vm_->pci().bus().stats(); }
  int ecam() { return vm_->pci().ecam_region(); }

  // The guest found exactly the configured functions, with the firmware's BARs.
  void ExpectFoundConfiguredDevices() {
    EXPECT_EQ(Report("functions"), vm_->pci().bus().functions().size());
    for (const pci::PciFunction* f : vm_->pci().bus().functions()) {
      const pci::DeviceSpec& s = f->spec();
      const std::string fn = absl::StrFormat("fn.%02d.%d.", s.slot, s.function);
      EXPECT_EQ(Report(fn + "id"), uint64_t{s.vendor_id} | uint64_t{s.device_id} << 16);
      EXPECT_EQ(Report(fn + "class"), s.class_code);
      for (const pci::BarSpec& b : s.bars) {
        EXPECT_EQ(Report(fn + absl::StrFormat("bar%d.addr", b.index)), f->BarAddress(b)) << fn;
        EXPECT_EQ(Report(fn + absl::StrFormat("bar%d.size", b.index)), b.size) << fn;
      }
      if (s.rom_size != 0) {
        EXPECT_EQ(Report(fn + "rom.size"), s.rom_size);
        EXPECT_EQ(Report(fn + "rom.addr"), f->RomAddress());
      }
    }
  }

  std::unique_ptr<GuestVm> vm_;
};

uint64_t DataPortExits(const kvm::ExitStats& s) {
  uint64_t n = 0;
  for (uint16_t p = pci::kPioConfigDataPort; p < pci::kPioConfigDataPort + 4; ++p) {
    n += s.pio(p, mmio::Direction::kRead) + s.pio(p, mmio::Direction::kWrite);
  }
  return n;
}

TEST_F(PciKvmTest, PioEnumerationFindsTheDevicesWithTwoExitsPerAccess) {
  Boot(kPio);
  ExpectFoundConfiguredDevices();
  EXPECT_EQ(config().accesses(pci::ConfigPath::kPio, mmio::Direction::kRead),
            Report("config_reads"));
  EXPECT_EQ(config().accesses(pci::ConfigPath::kPio, mmio::Direction::kWrite),
            Report("config_writes"));
  EXPECT_EQ(vm_->stats().pio(pci::kPioConfigAddressPort, mmio::Direction::kWrite), Accesses());
  EXPECT_EQ(DataPortExits(vm_->stats()), Accesses());
  EXPECT_EQ(vm_->stats().mmio(ecam(), mmio::Direction::kRead), 0u);
  // pci_enum writes the boot marker first: every machine serves that port.
  EXPECT_EQ(vm_->machine().boot_marker().marks(), 1u);
  EXPECT_EQ(vm_->machine().pio().unclaimed_writes(), 0u);
}

TEST_F(PciKvmTest, EcamEnumerationFindsTheDevicesWithOneExitPerAccess) {
  Boot(kEcam);
  ExpectFoundConfiguredDevices();
  EXPECT_EQ(config().accesses(pci::ConfigPath::kEcam, mmio::Direction::kRead),
            Report("config_reads"));
  EXPECT_EQ(config().accesses(pci::ConfigPath::kEcam, mmio::Direction::kWrite),
            Report("config_writes"));
  EXPECT_EQ(vm_->stats().mmio(ecam(), mmio::Direction::kRead), Report("config_reads"));
  EXPECT_EQ(vm_->stats().mmio(ecam(), mmio::Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(vm_->stats().exits(KVM_EXIT_MMIO), Accesses());
  EXPECT_EQ(vm_->stats().pio(pci::kPioConfigAddressPort, mmio::Direction::kWrite), 0u);
  EXPECT_EQ(Report("fn.01.0.ext_caps"), 1u);  // only ECAM reaches extended space
}

TEST_F(PciKvmTest, FastPathEnumerationFindsTheSameDevicesAndOnlyWritesExit) {
  Boot(kEcam, /*pio_enabled=*/true, /*fast=*/true);
  ExpectFoundConfiguredDevices();
  EXPECT_EQ(vm_->stats().mmio(ecam(), mmio::Direction::kRead), 0u);
  EXPECT_EQ(vm_->stats().mmio(ecam(), mmio::Direction::kWrite), Report("config_writes"));
  EXPECT_EQ(config().accesses(pci::ConfigPath::kEcam, mmio::Direction::kWrite),
            Report("config_writes"));
  EXPECT_EQ(vm_->stats().exits(KVM_EXIT_MMIO), Report("config_writes"));
}

TEST_F(PciKvmTest, LinuxStyleSizingTogglesDecodeAroundEveryBarProbe) {
  Boot(kEcam);
  for (const pci::PciFunction* f : vm_->pci().bus().functions()) {
    if (f->spec().slot == 0) continue;
    const pci::Bdf bdf{0, static_cast<uint8_t>(f->spec().slot), 0};
    // Probes of BAR0, BAR1 (64-bit), BAR3 (64-bit), BAR5 (empty) and the ROM, each with
    // decode turned off and back on: 10 command writes.
    const uint64_t writes = config().register_accesses(
        pci::ConfigPath::kEcam, mmio::Direction::kWrite, bdf, pci::cfg::kCommand);
    EXPECT_EQ(writes, Report(absl::StrFormat("fn.%02d.0.cmd_writes", f->spec().slot)));
    EXPECT_EQ(writes, 10u);
    EXPECT_EQ(f->Read(pci::cfg::kCommand, 2) & pci::cfg::kCommandMemory, pci::cfg::kCommandMemory);
  }
}

TEST_F(PciKvmTest, DisabledPioMakesTheType1ScanFindNothing) {
  Boot(kPio, /*pio_enabled=*/false);
  EXPECT_EQ(Report("functions"), 0u);
  EXPECT_EQ(config().accesses(pci::ConfigPath::kPio, mmio::Direction::kRead), 0u);
  // Every access still exits twice; the decoder answers all-ones without reaching the bus.
  EXPECT_EQ(vm_->stats().pio(pci::kPioConfigAddressPort, mmio::Direction::kWrite), Accesses());
}

}  // namespace
}  // namespace pcivmm
