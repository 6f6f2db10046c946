// The firmware role: assign every BAR an address before boot and hand the devices off.
#ifndef PCIVMM_PCI_FIRMWARE_H_
#define PCIVMM_PCI_FIRMWARE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "mmio/address_range.h"
#include "pci/pci_bus.h"

namespace pcivmm::pci {

inline constexpr uint64_t kPciMmio32Base = 0xC000'0000;  // up to the ECAM window
inline constexpr uint64_t kPciIoBase = 0xC000;
inline constexpr uint64_t kPciIoEnd = 0x10000;

// Where BARs may go (vmm/ARCHITECTURE.md, "Guest physical memory map").
struct PciWindows {
  mmio::AddressRange mem32;  // 32-bit BARs, 64-bit non-prefetchable BARs, ROMs
  mmio::AddressRange mem64;  // 64-bit prefetchable BARs
  mmio::AddressRange io;
};

// mem32 = [0xC000_0000, ECAM base); mem64 = from the first 1 GiB boundary above RAM (and
// above 4 GiB) to the top of a `phys_bits`-bit physical address space.
absl::StatusOr<PciWindows> DefaultPciWindows(uint64_t ram_end, int phys_bits);

struct HandOff {
  bool memory_decode = true;  // PCI_COMMAND_MEMORY set at hand-off (legacy) or clear
  bool io_decode = true;
};

// Assigns every BAR and ROM of every function, largest first at natural alignment, then
// sets each function's command register. ResourceExhausted naming the window and how many
// bytes are missing when they do not fit.
absl::Status AssignPciResources(PciBus& bus, const PciWindows& windows, const HandOff& hand_off);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_FIRMWARE_H_
