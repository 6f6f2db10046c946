#include "vmm/boot/acpi_tables.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/temp_dir.h"

namespace pcivmm::boot {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kBase = base::layout::kAcpiBase;

uint64_t Le(const Bytes& b, size_t off, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b.at(off + static_cast<size_t>(i));
  return v;
}

std::string Chars(const Bytes& b, size_t off, size_t n) {
  return std::string(b.begin() + static_cast<std::ptrdiff_t>(off),
                     b.begin() + static_cast<std::ptrdiff_t>(off + n));
}

uint8_t Sum(const Bytes& b, size_t off, size_t n) {
  return static_cast<uint8_t>(std::accumulate(b.begin() + static_cast<std::ptrdiff_t>(off),
                                              b.begin() + static_cast<std::ptrdiff_t>(off + n),
                                              0u));
}

// The first executable `name` on $PATH.
std::optional<std::string> FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "", ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `iasl <args>` in `dir` with its output in `log` there; returns the exit status.
int RunIasl(const std::string& iasl, const std::string& dir, const std::string& args,
            const std::string& log) {
  const std::string cmd = absl::StrFormat("cd '%s' && '%s' %s > %s 2>&1", dir, iasl, args, log);
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The RSDP in iasl's data table source format, both checksums left 0 for iasl to compute.
std::string RsdpSource(const Bytes& rsdp) {
  return absl::StrFormat(
      "[0008] Signature : \"RSD PTR \"\n[0001] Checksum : 00\n[0006] Oem ID : \"%s\"\n"
      "[0001] Revision : %02X\n[0004] RSDT Address : %08X\n[0004] Length : %08X\n"
      "[0008] XSDT Address : %016X\n[0001] Extended Checksum : 00\n[0003] Reserved : 000000\n",
      Chars(rsdp, 9, 6), rsdp[15], Le(rsdp, 16, 4), Le(rsdp, 20, 4), Le(rsdp, 24, 8));
}

AcpiPlatform MakePlatform(int vcpus, int bus_count) {
  const absl::StatusOr<pci::PciWindows> w = pci::DefaultPciWindows(2ull << 30, 40);
  EXPECT_TRUE(w.ok()) << w.status();
  return {.vcpus = vcpus, .bus_count = bus_count, .windows = *w};
}

struct Span {
  size_t offset;
  size_t length;
};

// The tables found by following RSDP -> XSDT -> FADT -> DSDT/FACS, keyed by signature.
class AcpiTablesTest : public ::testing::Test {
 protected:
  void Build(const AcpiPlatform& p) {
    absl::StatusOr<Bytes> blob = BuildAcpiTables(p, kBase);
    ASSERT_TRUE(blob.ok()) << blob.status();
    blob_ = *std::move(blob);
    ASSERT_LE(blob_.size(), base::layout::kAcpiSize);
    ASSERT_GE(blob_.size(), 36u);
    ASSERT_EQ(Chars(blob_, 0, 8), "RSD PTR ");
    ASSERT_NO_FATAL_FAILURE(AddTable(Le(blob_, 24, 8), "XSDT"));
    const Span xsdt = tables_["XSDT"];
    for (size_t off = xsdt.offset + 36; off < xsdt.offset + xsdt.length; off += 8) {
      ASSERT_NO_FATAL_FAILURE(AddTable(Le(blob_, off, 8), ""));
    }
    ASSERT_EQ(tables_.count("FACP"), 1u);
    ASSERT_NO_FATAL_FAILURE(AddTable(Le(blob_, tables_["FACP"].offset + 140, 8), "DSDT"));
    ASSERT_NO_FATAL_FAILURE(AddTable(Le(blob_, tables_["FACP"].offset + 132, 8), "FACS"));
  }

  // Records the table at guest address `gpa`, which must lie inside the blob.
  void AddTable(uint64_t gpa, const std::string& want_sig) {
    ASSERT_GE(gpa, kBase);
    const size_t off = gpa - kBase;
    ASSERT_LE(off + 8, blob_.size()) << std::hex << gpa;
    const std::string sig = Chars(blob_, off, 4);
    const auto len = static_cast<size_t>(Le(blob_, off + 4, 4));
    if (!want_sig.empty()) {
      EXPECT_EQ(sig, want_sig);
    }
    ASSERT_LE(off + len, blob_.size()) << sig;
    EXPECT_EQ(tables_.count(sig), 0u) << sig << " twice";
    tables_[sig] = {off, len};
  }

  uint64_t Field(const std::string& sig, size_t off, int n) {
    return Le(blob_, tables_.at(sig).offset + off, n);
  }
  std::string Text(const std::string& sig) {
    return Chars(blob_, tables_.at(sig).offset, tables_.at(sig).length);
  }

  Bytes blob_;
  std::map<std::string, Span> tables_;
};

TEST_F(AcpiTablesTest, RsdpHasBothChecksumsAndPointsAtXsdt) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(2, 1)));
  EXPECT_EQ(Sum(blob_, 0, 20), 0);  // ACPI 1.0 checksum over the first 20 bytes
  EXPECT_EQ(Sum(blob_, 0, 36), 0);  // extended checksum
  EXPECT_EQ(blob_[15], 2);          // revision
  EXPECT_EQ(Le(blob_, 20, 4), 36u);
  EXPECT_EQ(Le(blob_, 24, 8) % 8, 0u);
}

TEST_F(AcpiTablesTest, XsdtListsFadtMadtMcfgAndEveryTableChecksums) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(4, 2)));
  EXPECT_EQ(tables_["XSDT"].length, 36u + 3 * 8);
  for (const char* sig : {"XSDT", "FACP", "APIC", "MCFG", "DSDT"}) {
    ASSERT_EQ(tables_.count(sig), 1u) << sig;
    EXPECT_EQ(Sum(blob_, tables_[sig].offset, tables_[sig].length), 0) << sig;
    EXPECT_EQ(Chars(blob_, tables_[sig].offset + 10, 6), "PCIVMM") << sig;
  }
  EXPECT_EQ(tables_.size(), 6u);  // XSDT, FACP, APIC, MCFG, DSDT, FACS
}

TEST_F(AcpiTablesTest, FacsIs64ByteAlignedAndVersion2) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(1, 1)));
  EXPECT_EQ((kBase + tables_["FACS"].offset) % 64, 0u);
  EXPECT_EQ(tables_["FACS"].length, 64u);
  EXPECT_EQ(Field("FACS", 32, 1), 2u);
}

TEST_F(AcpiTablesTest, FadtDescribesFixedHardware) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(1, 1)));
  EXPECT_EQ(tables_["FACP"].length, 276u);
  EXPECT_EQ(Field("FACP", 8, 1), 6u);  // revision
  EXPECT_EQ(Field("FACP", 46, 2), base::layout::kAcpiSciIrq);
  EXPECT_EQ(Field("FACP", 48, 4), 0u);  // SMI_CMD: always in ACPI mode
  EXPECT_EQ(Field("FACP", 56, 4), base::layout::kAcpiPm1aEvtPort);
  EXPECT_EQ(Field("FACP", 64, 4), base::layout::kAcpiPm1aCntPort);
  EXPECT_EQ(Field("FACP", 76, 4), 0u);                // no PM timer
  EXPECT_EQ(Field("FACP", 88, 1), 4u);                // PM1_EVT_LEN
  EXPECT_EQ(Field("FACP", 89, 1), 2u);                // PM1_CNT_LEN
  EXPECT_EQ(Field("FACP", 109, 2) & 0x22, 0u);        // no 8042, CMOS RTC present
  EXPECT_NE(Field("FACP", 109, 2) & 0x4, 0u);         // VGA not present
  EXPECT_NE(Field("FACP", 112, 4) & (1u << 10), 0u);  // RESET_REG_SUP
  EXPECT_EQ(Field("FACP", 112, 4) & (1u << 20), 0u);  // not HW_REDUCED_ACPI
  EXPECT_EQ(Field("FACP", 116, 4), 0x01000801u);      // RESET_REG: I/O, 8 bits, byte access
  EXPECT_EQ(Field("FACP", 120, 8), base::layout::kAcpiResetPort);
  EXPECT_EQ(Field("FACP", 128, 1), base::layout::kAcpiResetValue);
  EXPECT_EQ(Field("FACP", 148, 2), 0x2001u);  // X_PM1a_EVT_BLK: I/O, 32 bits
  EXPECT_EQ(Field("FACP", 152, 8), base::layout::kAcpiPm1aEvtPort);
  EXPECT_EQ(Field("FACP", 172, 2), 0x1001u);  // X_PM1a_CNT_BLK: I/O, 16 bits
  EXPECT_EQ(Field("FACP", 176, 8), base::layout::kAcpiPm1aCntPort);
}

class MadtTest : public AcpiTablesTest, public ::testing::WithParamInterface<int> {};

TEST_P(MadtTest, OneEnabledLapicPerVcpuThenIoapicOverridesAndNmi) {
  const int vcpus = GetParam();
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(vcpus, 1)));
  EXPECT_EQ(Field("APIC", 36, 4), base::layout::kLapicAddr);
  EXPECT_EQ(Field("APIC", 40, 4), 1u);  // PCAT_COMPAT
  std::map<int, int> count;
  const Span madt = tables_["APIC"];
  for (size_t off = madt.offset + 44; off < madt.offset + madt.length; off += blob_[off + 1]) {
    ASSERT_GT(blob_[off + 1], 0);
    const int type = blob_[off];
    if (type == 0) {  // Processor Local APIC: UID = APIC ID = index, enabled
      EXPECT_EQ(blob_[off + 2], count[0]);
      EXPECT_EQ(blob_[off + 3], count[0]);
      EXPECT_EQ(Le(blob_, off + 4, 4), 1u);
    } else if (type == 1) {
      EXPECT_EQ(blob_[off + 2], vcpus);
      EXPECT_EQ(Le(blob_, off + 4, 4), base::layout::kIoapicAddr);
      EXPECT_EQ(Le(blob_, off + 8, 4), 0u);
    } else if (type == 2) {  // only the SCI: IRQ0 is GSI 0 as KVM routes it
      EXPECT_EQ(blob_[off + 3], base::layout::kAcpiSciIrq);
      EXPECT_EQ(Le(blob_, off + 8, 2), 0x000Du);  // level, active high
    } else if (type == 4) {
      EXPECT_EQ(blob_[off + 2], 0xFF);
      EXPECT_EQ(blob_[off + 5], 1);  // LINT1
    }
    ++count[type];
  }
  EXPECT_EQ(count[0], vcpus);
  EXPECT_EQ(count[1], 1);
  EXPECT_EQ(count[2], 1);
  EXPECT_EQ(count[4], 1);
  EXPECT_EQ(count.size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(Vcpus, MadtTest, ::testing::Values(1, 3, 255));

TEST_F(AcpiTablesTest, McfgCoversEveryBus) {
  for (int buses : {1, 16, 256}) {
    tables_.clear();
    ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(1, buses)));
    EXPECT_EQ(tables_["MCFG"].length, 36u + 8 + 16);
    EXPECT_EQ(Field("MCFG", 44, 8), pci::kEcamBase);
    EXPECT_EQ(Field("MCFG", 52, 2), 0u);  // segment
    EXPECT_EQ(Field("MCFG", 54, 1), 0u);  // start bus
    EXPECT_EQ(Field("MCFG", 55, 1), static_cast<uint64_t>(buses - 1));
  }
}

// \_S5_ as Name (\_S5, Package (0x04) {0x05, 0x05, Zero, Zero}) and the host bridge IDs.
TEST_F(AcpiTablesTest, DsdtHasS5AndDeviceIds) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(1, 1)));
  const std::string dsdt = Text("DSDT");
  EXPECT_NE(dsdt.find(std::string("\x08\\_S5_\x12\x08\x04\x0A\x05\x0A\x05\x00\x00", 15)),
            std::string::npos);
  EXPECT_NE(dsdt.find("_HID\x0C\x41\xD0\x0A\x08"), std::string::npos);  // PNP0A08
  EXPECT_NE(dsdt.find("_HID\x0C\x41\xD0\x0C\x02"), std::string::npos);  // PNP0C02
  EXPECT_NE(dsdt.find("_HID\x0C\x41\xD0\x05\x01"), std::string::npos);  // PNP0501
  EXPECT_EQ(Field("DSDT", 8, 1), 2u);                                   // 64-bit integers
}

// iasl (Debian package acpica-tools) must be installed: without it these tests fail.
class IaslTest : public AcpiTablesTest {
 protected:
  void SetUp() override {
    const std::optional<std::string> iasl = FindInPath("iasl");
    ASSERT_TRUE(iasl.has_value()) << "iasl is not on PATH: install the Debian package "
                                     "acpica-tools (apt-get install -y acpica-tools)";
    iasl_ = *iasl;
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
    ASSERT_EQ(dir_.path().find('\''), std::string::npos) << dir_.path();
  }
  std::string iasl_;
  base::TempDir dir_{"pcivmm_acpi"};
};

// Every table but the RSDP survives ACPICA's own disassembler: it recomputes checksums,
// checks lengths and parses the DSDT's AML.
TEST_F(IaslTest, DisassemblesEveryTableCleanly) {
  const AcpiPlatform platform = MakePlatform(4, 16);
  ASSERT_NO_FATAL_FAILURE(Build(platform));
  std::map<std::string, std::string> dsl;
  for (const auto& [sig, span] : tables_) {
    const std::string name = absl::AsciiStrToLower(sig);
    std::ofstream(absl::StrCat(dir_.path(), "/", name, ".dat"), std::ios::binary)
        .write(reinterpret_cast<const char*>(blob_.data() + span.offset),  // bytes as chars
               static_cast<std::streamsize>(span.length));
    EXPECT_EQ(RunIasl(iasl_, dir_.path(), absl::StrCat("-d ", name, ".dat"), name + ".log"), 0)
        << sig;
    const std::string log = ReadFile(absl::StrCat(dir_.path(), "/", name, ".log"));
    dsl[sig] = ReadFile(absl::StrCat(dir_.path(), "/", name, ".dsl"));
    for (const std::string& text : {log, dsl[sig]}) {
      EXPECT_FALSE(absl::StrContains(text, "Error")) << sig << ":\n" << text;
      EXPECT_FALSE(absl::StrContains(text, "Warning")) << sig << ":\n" << text;
      EXPECT_FALSE(absl::StrContains(absl::AsciiStrToLower(text), "incorrect checksum")) << text;
    }
    EXPECT_TRUE(absl::StrContains(log, absl::StrCat("[", sig, "]"))) << sig << ":\n" << log;
  }
  const pci::PciWindows& w = platform.windows;
  for (const std::string& want :
       {std::string("PNP0A08"), std::string("PNP0A03"), std::string("PNP0C02"),
        std::string("PNP0501"), std::string("_S5_"), std::string("0x000F,"),
        absl::StrFormat("0x%08X,", platform.ecam_base), std::string("0x01000000,"),
        absl::StrFormat("0x%04X,", w.io.base()), absl::StrFormat("0x%08X,", w.mem32.base()),
        absl::StrFormat("0x%08X,", w.mem32.end() - 1), absl::StrFormat("0x%016X,", w.mem64.base()),
        absl::StrFormat("0x%016X,", w.mem64.end() - 1)}) {
    EXPECT_TRUE(absl::StrContains(dsl["DSDT"], want)) << want << "\n" << dsl["DSDT"];
  }
  // The ASL compiler checks more than the disassembler (resource descriptor fields, reserved
  // names' types and arguments): the disassembled DSDT must compile without a remark.
  EXPECT_EQ(RunIasl(iasl_, dir_.path(), "dsdt.dsl", "dsdt_compile.log"), 0);
  const std::string log = ReadFile(dir_.path() + "/dsdt_compile.log");
  EXPECT_TRUE(absl::StrContains(log, "Compilation successful. 0 Errors, 0 Warnings, 0 Remarks"))
      << log;
}

// iasl cannot load a standalone RSDP (it has no standard header), so it compiles the RSDP's
// fields from source instead, computing both checksums itself: the bytes must match ours.
TEST_F(IaslTest, CompilesTheSameRsdp) {
  ASSERT_NO_FATAL_FAILURE(Build(MakePlatform(1, 1)));
  const Bytes rsdp(blob_.begin(), blob_.begin() + 36);
  std::ofstream(dir_.path() + "/rsdp.asl") << RsdpSource(rsdp);
  EXPECT_EQ(RunIasl(iasl_, dir_.path(), "rsdp.asl", "rsdp.log"), 0);
  const std::string log = ReadFile(dir_.path() + "/rsdp.log");
  EXPECT_TRUE(absl::StrContains(log, "Compilation successful. 0 Errors, 0 Warnings")) << log;
  const std::string aml = ReadFile(dir_.path() + "/rsdp.aml");
  EXPECT_EQ(aml, Chars(rsdp, 0, rsdp.size()));
}

TEST(AcpiTablesErrorTest, RejectsBadCountsNamingTheField) {
  struct Case {
    int vcpus, buses;
    const char* field;
  };
  for (const Case& c : {Case{0, 1, "vcpus"}, Case{256, 1, "vcpus"}, Case{1, 0, "bus_count"},
                        Case{1, 257, "bus_count"}}) {
    const absl::StatusOr<Bytes> r = BuildAcpiTables(MakePlatform(c.vcpus, c.buses), kBase);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_TRUE(absl::StrContains(r.status().message(), c.field)) << r.status();
  }
}

TEST(AcpiTablesErrorTest, RejectsEcamNotBelow4GiB) {
  AcpiPlatform p = MakePlatform(1, 2);
  for (uint64_t base : {0xFFF0'0000ull, 0x1'0000'0000ull, 0xE008'0000ull}) {
    p.ecam_base = base;
    const absl::StatusOr<Bytes> r = BuildAcpiTables(p, kBase);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << std::hex << base;
    EXPECT_TRUE(absl::StrContains(r.status().message(), "ecam_base")) << r.status();
  }
  p.ecam_base = 0xFFE0'0000;  // the last two MiB below 4 GiB are fine
  EXPECT_TRUE(BuildAcpiTables(p, kBase).ok());
}

TEST(AcpiTablesErrorTest, RejectsWindowsTheDescriptorsCannotHoldAndMisalignedBase) {
  AcpiPlatform p = MakePlatform(1, 1);
  p.windows.io = *mmio::AddressRange::Make(0xF000, 0x2000);
  EXPECT_TRUE(absl::StrContains(BuildAcpiTables(p, kBase).status().message(), "windows.io"));
  p = MakePlatform(1, 1);
  p.windows.mem32 = *mmio::AddressRange::Make(0xF000'0000, 0x2000'0000);
  EXPECT_TRUE(absl::StrContains(BuildAcpiTables(p, kBase).status().message(), "windows.mem32"));
  const absl::StatusOr<Bytes> r = BuildAcpiTables(MakePlatform(1, 1), kBase + 16);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "base_gpa")) << r.status();
}

TEST(AcpiTablesErrorTest, TooSmallAreaIsResourceExhausted) {
  const absl::StatusOr<Bytes> fits = BuildAcpiTables(MakePlatform(8, 4), kBase);
  ASSERT_TRUE(fits.ok());
  EXPECT_TRUE(BuildAcpiTables(MakePlatform(8, 4), kBase, fits->size()).ok());
  const absl::StatusOr<Bytes> r = BuildAcpiTables(MakePlatform(8, 4), kBase, fits->size() - 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace pcivmm::boot
