#include "vmm/boot/acpi_tables.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "pci/access/pio_cf8.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/status_macros.h"
#include "vmm/boot/aml.h"

namespace pcivmm::boot {
namespace {

using aml::Bytes;

constexpr uint64_t k4GiB = 1ull << 32;
constexpr std::string_view kOemId = "PCIVMM";         // 6 bytes
constexpr std::string_view kOemTableId = "PCIVMM  ";  // 8 bytes
constexpr std::string_view kCreatorId = "PVMM";       // 4 bytes
constexpr size_t kHeaderSize = 36;
constexpr size_t kRsdpSize = 36;
constexpr size_t kXsdtEntries = 3;  // FADT, MADT, MCFG
constexpr size_t kXsdtSize = kHeaderSize + 8 * kXsdtEntries;
constexpr size_t kFadtSize = 276;
constexpr size_t kFacsSize = 64;

void Put(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void PutChars(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

void PutZeros(Bytes& out, size_t n) { out.insert(out.end(), n, 0); }

// The byte that makes `bytes` (with it in place of a zero) sum to zero modulo 256.
uint8_t ChecksumByte(absl::Span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return static_cast<uint8_t>(-sum);
}

// ACPI 6.4, 5.2.6 System Description Table Header: Signature, Length, Revision, Checksum,
// OEMID, OEM Table ID, OEM Revision, Creator ID, Creator Revision (36 bytes).
Bytes Header(std::string_view signature, uint8_t revision) {
  Bytes out;
  PutChars(out, signature);
  Put(out, 0, 4);  // Length, set by Seal()
  out.insert(out.end(), {revision, 0});
  PutChars(out, kOemId);
  PutChars(out, kOemTableId);
  Put(out, 1, 4);
  PutChars(out, kCreatorId);
  Put(out, 1, 4);
  return out;
}

// "Length: the length of the entire table, in bytes, including the header"; "Checksum: the
// entire table, including the checksum field, must add to zero".
Bytes Seal(Bytes table) {
  Bytes length;
  Put(length, table.size(), 4);
  std::copy(length.begin(), length.end(), table.begin() + 4);
  table[9] = ChecksumByte(table);
  return table;
}

// ACPI 6.4, 5.2.3.2 Generic Address Structure: Address Space ID, Register Bit Width, Register
// Bit Offset, Access Size (1 byte, 2 word, ...), Address (64-bit).
struct Gas {
  static constexpr uint8_t kSystemIo = 1;
  uint8_t space = kSystemIo;
  uint8_t bit_width = 0;
  uint8_t access_size = 0;
  uint64_t address = 0;
};

void PutGas(Bytes& out, const Gas& gas) {
  out.insert(out.end(), {gas.space, gas.bit_width, 0, gas.access_size});
  Put(out, gas.address, 8);
}

// ACPI 6.4, 5.2.5.3 Root System Description Pointer Structure (revision 2): "Checksum: ...
// only the first 20 bytes ... including the checksum field ... must sum to zero"; "Extended
// Checksum: ... the entire table, including both checksum fields". RsdtAddress stays 0: the
// XSDT supersedes it.
Bytes Rsdp(uint64_t xsdt) {
  Bytes out;
  PutChars(out, "RSD PTR ");
  out.push_back(0);  // Checksum
  PutChars(out, kOemId);
  out.push_back(2);  // Revision
  Put(out, 0, 4);    // RsdtAddress
  Put(out, kRsdpSize, 4);
  Put(out, xsdt, 8);
  PutZeros(out, 4);  // Extended Checksum, Reserved
  out[8] = ChecksumByte(absl::MakeConstSpan(out).first(20));
  out[32] = ChecksumByte(out);
  return out;
}

// ACPI 6.4, 5.2.8 Extended System Description Table: the header, then "an array of 64-bit
// physical addresses that point to other DESCRIPTION_HEADERs".
Bytes Xsdt(std::initializer_list<uint64_t> tables) {
  Bytes out = Header("XSDT", 1);
  for (uint64_t t : tables) Put(out, t, 8);
  return Seal(std::move(out));
}

// ACPI 6.4, 5.2.9 Table 5.9, FADT bytes 36..108: FIRMWARE_CTRL and DSDT stay 0 ("if the
// X_FIRMWARE_CTRL field contains a non zero value then this field must be zero"); SMI_CMD = 0
// means "the system does not support ... ACPI mode transitions" (always in ACPI mode); no
// PM1b, PM2, PM timer or GPE blocks.
void PutFadtLegacyBlocks(Bytes& out) {
  Put(out, 0, 4);                               // FIRMWARE_CTRL
  Put(out, 0, 4);                               // DSDT
  out.insert(out.end(), {0, 0});                // Reserved, Preferred_PM_Profile (unspecified)
  Put(out, base::layout::kAcpiSciIrq, 2);       // SCI_INT
  Put(out, 0, 4);                               // SMI_CMD
  PutZeros(out, 4);                             // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
  Put(out, base::layout::kAcpiPm1aEvtPort, 4);  // PM1a_EVT_BLK
  Put(out, 0, 4);                               // PM1b_EVT_BLK
  Put(out, base::layout::kAcpiPm1aCntPort, 4);  // PM1a_CNT_BLK
  PutZeros(out, size_t{4} * 5);                 // PM1b_CNT, PM2_CNT, PM_TMR, GPE0, GPE1 blocks
  out.insert(out.end(), {4, 2, 0, 0, 0, 0, 0, 0});  // PM1_EVT_LEN, PM1_CNT_LEN, ..., CST_CNT
  Put(out, 101, 2);          // P_LVL2_LAT: "a value > 100 indicates the system does not support C2"
  Put(out, 1001, 2);         // P_LVL3_LAT: "a value > 1000 indicates ... does not support C3"
  PutZeros(out, 4 + 2 + 3);  // FLUSH_SIZE/STRIDE, DUTY_OFFSET/WIDTH, DAY/MON_ALRM, CENTURY
}

// Table 5.11 IA-PC Boot Architecture Flags: LEGACY_DEVICES (bit 0) set, COM1 and the CMOS
// RTC are ISA devices; 8042 (bit 1) clear, there is no keyboard controller (reset goes
// through RESET_REG, and Linux skips the i8042 probe); VGA Not Present (bit 2) set; MSI Not
// Supported (bit 3) clear; CMOS RTC Not Present (bit 5) clear, the RTC is at 0x70.
constexpr uint16_t kIapcBootArch = (1u << 0) | (1u << 2);

// Table 5.10 Fixed ACPI Description Table Fixed Feature Flags: WBINVD (0), PROC_C1 (2),
// PWR_BUTTON (4) and SLP_BUTTON (5) as "control method or not present", FIX_RTC (6) "RTC wake
// status is not supported in fixed register space", RESET_REG_SUP (10), HEADLESS (12): the
// console is COM1.
constexpr uint32_t kFadtFlags =
    (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 10) | (1u << 12);

// FADT bytes 109..148: boot flags, flags, RESET_REG/RESET_VALUE ("Register_Bit_Width must
// be 8 and Register_Bit_Offset must be 0"), minor version, X_FIRMWARE_CTRL, X_DSDT.
void PutFadtFlagsAndPointers(Bytes& out, uint64_t facs, uint64_t dsdt) {
  Put(out, kIapcBootArch, 2);
  out.push_back(0);  // Reserved
  Put(out, kFadtFlags, 4);
  PutGas(out, {.bit_width = 8, .access_size = 1, .address = base::layout::kAcpiResetPort});
  out.push_back(base::layout::kAcpiResetValue);
  Put(out, 0, 2);    // ARM_BOOT_ARCH
  out.push_back(4);  // FADT Minor Version: ACPI 6.4
  Put(out, facs, 8);
  Put(out, dsdt, 8);
}

// FADT bytes 148..276: the extended (GAS) register blocks, matching the legacy ones (ACPICA
// warns when address or width differ), and the Hypervisor Vendor Identity (unset).
void PutFadtExtendedBlocks(Bytes& out) {
  PutGas(out, {.bit_width = 32, .access_size = 2, .address = base::layout::kAcpiPm1aEvtPort});
  PutZeros(out, 12);  // X_PM1b_EVT_BLK
  PutGas(out, {.bit_width = 16, .access_size = 2, .address = base::layout::kAcpiPm1aCntPort});
  PutZeros(out, size_t{12} *
                    7);  // X_PM1b_CNT, X_PM2_CNT, X_PM_TMR, X_GPE0, X_GPE1, SLEEP_CONTROL/STATUS
  Put(out, 0, 8);        // Hypervisor Vendor Identity
}

// ACPI 6.4, 5.2.9 Fixed ACPI Description Table, revision 6.
Bytes Fadt(uint64_t facs, uint64_t dsdt) {
  Bytes out = Header("FACP", 6);
  PutFadtLegacyBlocks(out);
  PutFadtFlagsAndPointers(out, facs, dsdt);
  PutFadtExtendedBlocks(out);
  return Seal(std::move(out));
}

// ACPI 6.4, 5.2.10 Firmware ACPI Control Structure: Signature, Length (64), Hardware
// Signature, waking vectors, Global Lock, Flags, Version 2; no checksum. "The FACS must be
// aligned on a 64-byte boundary".
Bytes Facs() {
  Bytes out;
  PutChars(out, "FACS");
  Put(out, kFacsSize, 4);
  PutZeros(out, 4 * 4 + 8);  // hardware signature, waking vector, global lock, flags, X vector
  out.push_back(2);          // Version
  PutZeros(out, kFacsSize - out.size());
  return out;
}

// ACPI 6.4, 5.2.12.2 Processor Local APIC Structure: Type 0, Length 8, ACPI Processor UID,
// APIC ID, Flags (bit 0 Enabled).
void PutLapic(Bytes& out, uint8_t id) {
  out.insert(out.end(), {0, 8, id, id});
  Put(out, 1, 4);
}

// 5.2.12.3 I/O APIC Structure: Type 1, Length 12, I/O APIC ID, Reserved, I/O APIC Address,
// Global System Interrupt Base.
void PutIoapic(Bytes& out, uint8_t id) {
  out.insert(out.end(), {1, 12, id, 0});
  Put(out, base::layout::kIoapicAddr, 4);
  Put(out, 0, 4);
}

// 5.2.12.5 Interrupt Source Override Structure: Type 2, Length 10, Bus 0 (ISA), Source,
// Global System Interrupt, Flags (Table 5.26 MPS INTI: bits 1:0 polarity, 3:2 trigger mode).
void PutSourceOverride(Bytes& out, uint8_t irq, uint32_t gsi, uint16_t flags) {
  out.insert(out.end(), {2, 10, 0, irq});
  Put(out, gsi, 4);
  Put(out, flags, 2);
}

// 5.2.12.7 Local APIC NMI Structure: Type 4, Length 6, ACPI Processor UID (0xFF: "applies to
// all processors"), Flags (edge, active high), Local APIC LINT#.
void PutLapicNmi(Bytes& out, uint8_t lint) {
  out.insert(out.end(), {4, 6, 0xFF});
  Put(out, 0x0005, 2);
  out.push_back(lint);
}

// ACPI 6.4, 5.2.12 Multiple APIC Description Table (revision 5): Local Interrupt Controller
// Address, Flags (bit 0 PCAT_COMPAT: "the system also has a PC-AT-compatible dual-8259 setup"),
// then the interrupt controller structures.
Bytes Madt(int vcpus) {
  constexpr uint16_t kLevelActiveHigh = 0x000D;  // polarity 01 active high, trigger 11 level
  Bytes out = Header("APIC", 5);
  Put(out, base::layout::kLapicAddr, 4);
  Put(out, 1, 4);
  for (int i = 0; i < vcpus; ++i) PutLapic(out, static_cast<uint8_t>(i));
  PutIoapic(out, static_cast<uint8_t>(vcpus));
  // No IRQ0 -> GSI 2 override: KVM's in-kernel PIT raises GSI 0 and KVM's default routing
  // sends GSI n to IOAPIC pin n, so ISA IRQ0 is identity-mapped. (QEMU declares the override
  // and reroutes GSI 0 to pin 2 with KVM_SET_GSI_ROUTING.) Declaring it without the rerouting
  // leaves Linux with no timer interrupt once it leaves the PIC.
  PutSourceOverride(out, base::layout::kAcpiSciIrq, base::layout::kAcpiSciIrq, kLevelActiveHigh);
  PutLapicNmi(out, 1);
  return Seal(std::move(out));
}

// PCI Firmware Specification 3.0, 4.1.2 MCFG Table: the header, 8 reserved bytes, then per
// allocation: Base Address (64), PCI Segment Group (16), Start Bus, End Bus, 4 reserved.
Bytes Mcfg(const AcpiPlatform& p) {
  Bytes out = Header("MCFG", 1);
  PutZeros(out, 8);
  Put(out, p.ecam_base, 8);
  Put(out, 0, 2);
  out.insert(out.end(), {0, static_cast<uint8_t>(p.bus_count - 1)});
  PutZeros(out, 4);
  return Seal(std::move(out));
}

// ACPI 6.4, 6.4.2 / 6.4.3 resources of the host bridge (6.2.2 _CRS): the bus range, the
// config mechanism #1 ports it consumes, and the windows it forwards to PCI.
Bytes PciHostCrs(const AcpiPlatform& p) {
  const pci::PciWindows& w = p.windows;
  return aml::ResourceTemplate({
      aml::WordBusNumber(0, static_cast<uint16_t>(p.bus_count - 1)),
      aml::Io(pci::kPioConfigAddressPort, pci::kPioConfigAddressPort, 1, 8),
      aml::WordIo(static_cast<uint16_t>(w.io.base()), static_cast<uint16_t>(w.io.end() - 1)),
      aml::DWordMemory(static_cast<uint32_t>(w.mem32.base()),
                       static_cast<uint32_t>(w.mem32.end() - 1), aml::Caching::kNonCacheable),
      aml::QWordMemory(w.mem64.base(), w.mem64.end() - 1, aml::Caching::kPrefetchable),
  });
}

// ACPI 6.4, 6.2.13 _PRT (PCI Routing Table): Package {Address (device in the high word,
// 0xFFFF: any function), Pin (0 = INTA), Source (0: a global system interrupt), Source Index
// (the GSI)}.
Bytes PciPrt() {
  std::vector<Bytes> entries;
  for (uint32_t slot = 1; slot < 32; ++slot) {
    for (uint32_t pin = 0; pin < 4; ++pin) {
      entries.push_back(aml::Package({aml::Integer((slot << 16) | 0xFFFF), aml::Integer(pin),
                                      aml::Integer(0), aml::Integer(PciIntxGsi(slot, pin))}));
    }
  }
  return aml::Package(entries);
}

// PCI Firmware Specification 3.0, 4.1.5: a PCI Express host bridge has _HID PNP0A08 and
// _CID PNP0A03; ACPI 6.4, 6.5.5 _SEG, 6.5.5 _BBN.
Bytes PciHostBridge(const AcpiPlatform& p) {
  return aml::Device("PCI0", {
                                 aml::Name("_HID", aml::EisaIdConst("PNP0A08")),
                                 aml::Name("_CID", aml::EisaIdConst("PNP0A03")),
                                 aml::Name("_SEG", aml::Integer(0)),
                                 aml::Name("_UID", aml::Integer(0)),
                                 aml::Name("_BBN", aml::Integer(0)),
                                 aml::Name("_CRS", PciHostCrs(p)),
                                 aml::Name("_PRT", PciPrt()),
                             });
}

// PCI Firmware Specification 3.0, 4.1.2: "the memory range consumed by the ECAM ... must be
// reserved by ... a motherboard resource device (PNP0C02)". Linux checks this before it uses
// MMCONFIG.
Bytes EcamReservation(const AcpiPlatform& p) {
  const auto size =
      static_cast<uint32_t>(pci::kEcamBytesPerBus * static_cast<uint64_t>(p.bus_count));
  return aml::Device("MRES",
                     {
                         aml::Name("_HID", aml::EisaIdConst("PNP0C02")),
                         aml::Name("_UID", aml::Integer(0)),
                         aml::Name("_CRS", aml::ResourceTemplate({aml::Memory32Fixed(
                                               true, static_cast<uint32_t>(p.ecam_base), size)})),
                     });
}

// The 16550 at COM1: PNP0501 ("16550A-compatible COM port").
Bytes Com1() {
  return aml::Device(
      "COM1",
      {
          aml::Name("_HID", aml::EisaIdConst("PNP0501")),
          aml::Name("_UID", aml::Integer(1)),
          aml::Name("_CRS", aml::ResourceTemplate({
                                aml::Io(base::layout::kCom1Port, base::layout::kCom1Port, 1, 8),
                                aml::IrqNoFlags(1u << base::layout::kCom1Irq),
                            })),
      });
}

// ACPI 6.4, 7.4.2 \_Sx (System States): "Package {SLP_TYPa, SLP_TYPb, Reserved, Reserved}";
// 7.4.2.6 \_S5 Soft Off.
Bytes S5() {
  const Bytes typ = aml::Integer(base::layout::kAcpiS5SlpTyp);
  return aml::Name("\\_S5", aml::Package({typ, typ, aml::Integer(0), aml::Integer(0)}));
}

// ACPI 6.4, 5.2.11.1 Differentiated System Description Table; revision 2: integers are
// 64 bits wide (needed for the QWordMemory window).
Bytes Dsdt(const AcpiPlatform& p) {
  Bytes out = Header("DSDT", 2);
  const Bytes sb = aml::Scope("\\_SB", {PciHostBridge(p), EcamReservation(p), Com1()});
  out.insert(out.end(), sb.begin(), sb.end());
  const Bytes s5 = S5();
  out.insert(out.end(), s5.begin(), s5.end());
  return Seal(std::move(out));
}

absl::Status ValidateCounts(const AcpiPlatform& p) {
  if (p.vcpus < 1 || p.vcpus > 255) {
    return absl::InvalidArgumentError(absl::StrFormat("vcpus %d: must be 1..255", p.vcpus));
  }
  if (p.bus_count < 1 || p.bus_count > 256) {
    return absl::InvalidArgumentError(absl::StrFormat("bus_count %d: must be 1..256", p.bus_count));
  }
  return absl::OkStatus();
}

absl::Status ValidateAddresses(const AcpiPlatform& p, uint64_t base_gpa) {
  const uint64_t ecam_size = pci::kEcamBytesPerBus * static_cast<uint64_t>(p.bus_count);
  if (p.ecam_base % pci::kEcamBytesPerBus != 0 || p.ecam_base >= k4GiB ||
      ecam_size > k4GiB - p.ecam_base) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ecam_base %#x (%d buses): the ECAM window must be 1 MiB aligned and end below 4 GiB "
        "(Linux accepts MCFG areas only there)",
        p.ecam_base, p.bus_count));
  }
  if (p.windows.io.end() > 0x10000) {
    return absl::InvalidArgumentError(
        absl::StrFormat("windows.io ends at %#x: beyond the 64 KiB I/O space", p.windows.io.end()));
  }
  if (p.windows.mem32.end() > k4GiB) {
    return absl::InvalidArgumentError(
        absl::StrFormat("windows.mem32 ends at %#x: above 4 GiB", p.windows.mem32.end()));
  }
  if (base_gpa % 64 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("base_gpa %#x: must be 64-byte aligned (RSDP, FACS)", base_gpa));
  }
  return absl::OkStatus();
}

constexpr size_t AlignUp(size_t v, size_t align) { return (v + align - 1) / align * align; }

// Blob offsets, in order: RSDP, XSDT, FADT, FACS, DSDT, MADT, MCFG, end.
struct Offsets {
  size_t xsdt, fadt, facs, dsdt, madt, mcfg, end;
};

Offsets LayOut(size_t dsdt_size, size_t madt_size, size_t mcfg_size) {
  Offsets o{};
  o.xsdt = AlignUp(kRsdpSize, 8);
  o.fadt = AlignUp(o.xsdt + kXsdtSize, 8);
  o.facs = AlignUp(o.fadt + kFadtSize, 64);
  o.dsdt = AlignUp(o.facs + kFacsSize, 8);
  o.madt = AlignUp(o.dsdt + dsdt_size, 8);
  o.mcfg = AlignUp(o.madt + madt_size, 8);
  o.end = o.mcfg + mcfg_size;
  return o;
}

void CopyAt(Bytes& blob, size_t offset, const Bytes& table) {
  std::copy(table.begin(), table.end(), blob.begin() + static_cast<std::ptrdiff_t>(offset));
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> BuildAcpiTables(const AcpiPlatform& platform,
                                                     uint64_t base_gpa, size_t max_size) {
  PCIVMM_RETURN_IF_ERROR(ValidateCounts(platform));
  PCIVMM_RETURN_IF_ERROR(ValidateAddresses(platform, base_gpa));
  const Bytes dsdt = Dsdt(platform);
  const Bytes madt = Madt(platform.vcpus);
  const Bytes mcfg = Mcfg(platform);
  const Offsets o = LayOut(dsdt.size(), madt.size(), mcfg.size());
  if (o.end > max_size) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("ACPI tables need %d bytes; the firmware area holds %d", o.end, max_size));
  }
  Bytes blob(o.end, 0);
  CopyAt(blob, 0, Rsdp(base_gpa + o.xsdt));
  CopyAt(blob, o.xsdt, Xsdt({base_gpa + o.fadt, base_gpa + o.madt, base_gpa + o.mcfg}));
  CopyAt(blob, o.fadt, Fadt(base_gpa + o.facs, base_gpa + o.dsdt));
  CopyAt(blob, o.facs, Facs());
  CopyAt(blob, o.dsdt, dsdt);
  CopyAt(blob, o.madt, madt);
  CopyAt(blob, o.mcfg, mcfg);
  return blob;
}

absl::StatusOr<std::vector<uint8_t>> BuildAcpiTables(const AcpiPlatform& platform,
                                                     uint64_t base_gpa) {
  return BuildAcpiTables(platform, base_gpa, base::layout::kAcpiSize);
}

}  // namespace pcivmm::boot
