// The ACPI tables pcivmm hands a directly booted Linux guest: RSDP, XSDT, FADT, FACS, DSDT
// (PCI host bridge, ECAM reservation, COM1, \_S5), MADT and MCFG (ACPI 6.4; PCI Firmware 3.0).
#ifndef PCIVMM_VMM_BOOT_ACPI_TABLES_H_
#define PCIVMM_VMM_BOOT_ACPI_TABLES_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "pci/access/ecam_trap.h"
#include "pci/firmware.h"

namespace pcivmm::boot {

struct AcpiPlatform {
  int vcpus = 1;  // one enabled LAPIC (processor UID = APIC ID = index) per vCPU
  uint64_t ecam_base = pci::kEcamBase;  // pci/config_access.h
  int bus_count = 1;                    // MCFG end bus = bus_count - 1
  pci::PciWindows windows;  // pci/firmware.h: io, mem32, mem64 (the PCI host bridge _CRS)
};

// Tables laid out for guest physical address `base_gpa` (layout::kAcpiBase): RSDP at offset 0,
// then XSDT, FADT, FACS, DSDT, MADT, MCFG. The blob is at most layout::kAcpiSize bytes.
// InvalidArgument naming the field for vcpus outside 1..255, bus_count outside 1..256, an ECAM
// window not below 4 GiB, windows.io above 0xFFFF, windows.mem32 above 4 GiB, or a base_gpa
// that is not 64-byte aligned (the FACS must be); ResourceExhausted if the blob is too big.
absl::StatusOr<std::vector<uint8_t>> BuildAcpiTables(const AcpiPlatform& platform,
                                                     uint64_t base_gpa);
// The same with another size limit (tests reach ResourceExhausted through it).
absl::StatusOr<std::vector<uint8_t>> BuildAcpiTables(const AcpiPlatform& platform,
                                                     uint64_t base_gpa, size_t max_size);

// INTx routing of the DSDT's _PRT, for whoever programs the Interrupt Line register and the
// IOAPIC pins: pin 0..3 (INTA..INTD) of bus 0 slot `slot` goes to IOAPIC GSI
// 16 + (slot + pin) % 8, the usual "swizzle" spread over the eight PCI GSIs 16..23.
inline constexpr uint32_t kPciIntxFirstGsi = 16;
inline constexpr uint32_t kPciIntxGsiCount = 8;
constexpr uint32_t PciIntxGsi(uint32_t slot, uint32_t pin) {
  return kPciIntxFirstGsi + (slot + pin) % kPciIntxGsiCount;
}

}  // namespace pcivmm::boot

#endif  // PCIVMM_VMM_BOOT_ACPI_TABLES_H_
