// Puts a PCI segment into a Machine: the bus with its devices, the firmware's BAR
// assignment, and the PIO and ECAM access paths on the machine's buses.
#ifndef PCIVMM_VMM_PLATFORM_PCI_PLATFORM_H_
#define PCIVMM_VMM_PLATFORM_PCI_PLATFORM_H_

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "pci/access/ecam_fast_path.h"
#include "pci/access/ecam_trap.h"
#include "pci/access/pio_cf8.h"
#include "pci/bar_mapper.h"
#include "pci/device_spec.h"
#include "pci/firmware.h"
#include "pci/pci_bus.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/vfio_platform.h"

namespace pcivmm::platform {

struct PciConfig {
  int bus_count = 1;            // ECAM window = bus_count MiB at 0xE000_0000
  bool pio_enabled = true;      // 0xCF8/0xCFC; off: they read all-ones
  bool ecam_fast_path = false;  // ECAM reads from read-only shadow slots (zero exits)
  pci::HandOff hand_off;
  pci::MapPolicy bar_policy = pci::MapPolicy::kEager;
  pci::CostModel bar_cost;               // command register at hand-off
  std::vector<pci::DeviceSpec> devices;  // the host bridge at 00:00.0 is added implicitly
  std::vector<VfioDeviceConfig> vfio;    // real devices passed through (after `devices`)
  vfio::VfioPaths vfio_paths{};
};

class PciPlatform {
 public:
  static absl::StatusOr<std::unique_ptr<PciPlatform>> Attach(Machine& machine,
                                                             const PciConfig& config);

  pci::PciBus& bus() { return *bus_; }
  pci::PioConfigAccess& pio() { return *pio_; }
  const pci::PciWindows& windows() const { return *windows_; }
  pci::EcamFastPath& fast_path() { return *fast_path_; }
  pci::BarMapper& mapper() { return *mapper_; }
  VfioPlatform& vfio() { return *vfio_; }
  int ecam_region() const { return ecam_region_; }
  const pci::PciBus& bus() const { return *bus_; }

 private:
  PciPlatform() = default;
  std::unique_ptr<pci::PciBus> bus_;
  // After bus_ (its functions live there), before mapper_ (whose slots cover its BARs).
  std::unique_ptr<VfioPlatform> vfio_;
  std::shared_ptr<pci::PioConfigAccess> pio_;
  std::shared_ptr<pci::EcamConfigAccess> ecam_;
  std::unique_ptr<pci::EcamFastPath> fast_path_;
  std::unique_ptr<pci::BarMapper> mapper_;
  std::optional<pci::PciWindows> windows_;
  int ecam_region_ = -1;
};

// A one-line-per-BAR listing of the bus: "00:01.0 10de:20b5 class 030200 BAR1 mem64 pref
// 0x1000000000 size 0x2000000000".
std::string FormatPciDevices(const pci::PciBus& bus);

// The platform's non-RAM reservations (reserved in e820 too): the firmware area, the ECAM
// window, and the IOAPIC/LAPIC through the high BIOS area up to 4 GiB.
std::vector<mmio::AddressRange> PlatformReserved(int bus_count);

// What no BAR may cover: RAM, the firmware area, the ECAM window, the IOAPIC/LAPIC and the
// high BIOS area below 4 GiB.
std::vector<mmio::AddressRange> ReservedForBars(const kvm::GuestMemory& memory, int bus_count);

// VM exits caused by config accesses: ports 0xCF8..0xCFF plus the ECAM window's MMIO exits.
uint64_t ConfigExitCount(const kvm::ExitStats& stats, const PciPlatform& pci);

// Per device and memory BAR: map/unmap/move/conflict counts, ioctl time, modelled time.
std::string FormatBarMapping(const pci::PciBus& bus, const pci::BarMapper& mapper);

// The config-access counters: per path and direction, and malformed.
std::string FormatConfigStats(const pci::ConfigStats& stats);

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_PCI_PLATFORM_H_
