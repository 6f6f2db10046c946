// Fuzzes the ACPI builder over the platforms a VM configuration can give it: vCPUs, ECAM
// buses and base, and the PCI windows that guest RAM size and physical address width make.
// A platform is refused with an error naming the field, or gives tables that hang together:
// RSDP -> XSDT -> FADT -> FACS and DSDT, MADT and MCFG, each inside the blob, each with its
// length and a zero checksum, one LAPIC per vCPU, MCFG covering exactly the buses.
// PCIVMM_ACPI_FUZZ_DUMP=DIR writes each valid input's tables to DIR/<n>/<sig>.dat, which
// tests/fuzz/acpi_iasl_check.sh hands to iasl (the corpus replay in the unit tier).
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "pci/firmware.h"
#include "tests/fuzz/fuzz_input.h"
#include "vmm/base/platform_layout.h"
#include "vmm/boot/acpi_tables.h"

namespace {

using pcivmm::fuzz::Check;
using Bytes = std::vector<uint8_t>;
constexpr uint64_t kBase = pcivmm::base::layout::kAcpiBase;

uint64_t Le(const Bytes& b, uint64_t off, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[off + static_cast<uint64_t>(i)];
  return v;
}

bool SumsToZero(const Bytes& b, uint64_t off, uint64_t len) {
  const auto first = b.begin() + static_cast<std::ptrdiff_t>(off);
  return static_cast<uint8_t>(
             std::accumulate(first, first + static_cast<std::ptrdiff_t>(len), 0u)) == 0;
}

// The table at guest physical address `gpa`: checked to lie inside the blob with a length
// that covers its header; its checksum too unless it is the FACS (which has none).
std::pair<std::string, uint64_t> Table(const Bytes& b, uint64_t gpa) {
  Check(gpa >= kBase && gpa - kBase + 8 <= b.size(), "a table pointer inside the blob");
  const uint64_t off = gpa - kBase;
  const std::string sig(b.begin() + static_cast<std::ptrdiff_t>(off),
                        b.begin() + static_cast<std::ptrdiff_t>(off + 4));
  const uint64_t len = Le(b, off + 4, 4);
  Check(len >= (sig == "FACS" ? 64 : 36) && off + len <= b.size(), "a table's length fits");
  Check(sig == "FACS" || SumsToZero(b, off, len), "a table's checksum");
  return {sig, off};
}

std::map<std::string, uint64_t> WalkTables(const Bytes& b) {
  Check(b.size() >= 36 && std::string(b.begin(), b.begin() + 8) == "RSD PTR ", "the RSDP");
  Check(SumsToZero(b, 0, 20) && SumsToZero(b, 0, 36), "the RSDP's checksums");
  std::map<std::string, uint64_t> at;
  const auto [xsdt_sig, xsdt] = Table(b, Le(b, 24, 8));
  Check(xsdt_sig == "XSDT", "the RSDP points at the XSDT");
  for (uint64_t e = xsdt + 36; e < xsdt + Le(b, xsdt + 4, 4); e += 8) {
    const auto [sig, off] = Table(b, Le(b, e, 8));
    at[sig] = off;
  }
  Check(at.count("FACP") && at.count("APIC") && at.count("MCFG"), "XSDT lists FADT MADT MCFG");
  const uint64_t fadt = at["FACP"];
  at["FACS"] = Table(b, Le(b, fadt + 132, 8)).second;  // X_FIRMWARE_CTRL
  at["DSDT"] = Table(b, Le(b, fadt + 140, 8)).second;  // X_DSDT
  return at;
}

void CheckPlatform(const Bytes& b, std::map<std::string, uint64_t>& at,
                   const pcivmm::boot::AcpiPlatform& p) {
  int lapics = 0;
  const uint64_t madt = at["APIC"];
  for (uint64_t e = madt + 44; e + 2 <= madt + Le(b, madt + 4, 4); e += b[e + 1]) {
    Check(b[e + 1] >= 2, "a MADT entry has a length");
    lapics += b[e] == 0;  // Processor Local APIC
  }
  Check(lapics == p.vcpus, "one LAPIC per vCPU");
  const uint64_t mcfg = at["MCFG"];
  Check(Le(b, mcfg + 44, 8) == p.ecam_base, "MCFG: the ECAM base");
  Check(b[mcfg + 55] == p.bus_count - 1, "MCFG: the end bus");
}

void Dump(const Bytes& b, const std::map<std::string, uint64_t>& at) {
  const char* dir = std::getenv("PCIVMM_ACPI_FUZZ_DUMP");
  if (dir == nullptr) return;
  static int n = 0;
  const std::string sub = std::string(dir) + "/" + std::to_string(n++);
  Check(std::system(("mkdir -p '" + sub + "'").c_str()) == 0, "mkdir for the dump");
  for (const auto& [sig, off] : at) {
    std::ofstream(sub + "/" + sig + ".dat", std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data() + off),  // bytes as chars
               static_cast<std::streamsize>(Le(b, off + 4, 4)));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pcivmm::fuzz::FuzzInput in(data, size);
  const int vcpus = in.U8() + (in.U8() & 1);                // 0..256
  const auto bus_count = static_cast<int>(in.U32() % 300);  // 0..299
  const uint32_t ecam = in.U32();
  const uint64_t ram_end = (uint64_t{in.U32()} + 1) << 20;  // 1 MiB .. 4 TiB
  const int phys_bits = in.U8() % 64;
  auto windows = pcivmm::pci::DefaultPciWindows(ram_end, phys_bits);
  if (!windows.ok()) return 0;
  pcivmm::boot::AcpiPlatform p{vcpus, pcivmm::pci::kEcamBase, bus_count, *windows};
  if (ecam & 1) p.ecam_base = uint64_t{ecam & ~0xFFFFFu} << (ecam & 2 ? 4 : 0);
  auto blob = pcivmm::boot::BuildAcpiTables(p, kBase);
  if (!blob.ok()) {
    Check(!blob.status().message().empty(), "a refusal names the field");
    return 0;
  }
  std::map<std::string, uint64_t> at = WalkTables(*blob);
  CheckPlatform(*blob, at, p);
  Dump(*blob, at);
  return 0;
}
