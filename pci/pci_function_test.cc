#include "pci/pci_function.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::pci {
namespace {

class PciFunctionTest : public ::testing::Test {
 protected:
  PciFunction Make(DeviceSpec spec) {
    return PciFunction(std::move(spec), absl::MakeSpan(storage_));
  }
  alignas(4) uint8_t storage_[kConfigSpaceSize];
};

// The sizing procedure of PCI 3.0, 6.2.5.1: save, write all 1's, read back, restore; the
// size is the two's complement of the read-back value with the type bits masked.
uint64_t SizeBar(PciFunction& f, const BarSpec& b) {
  const uint16_t off = BarOffset(b.index);
  const uint32_t orig = f.Read(off, 4);
  f.Write(off, 4, 0xFFFFFFFF);
  uint64_t mask = f.Read(off, 4);
  f.Write(off, 4, orig);
  const bool is64 = b.kind == BarKind::kMem64;
  if (is64) {
    const auto hi = static_cast<uint16_t>(off + 4);
    const uint32_t orig_hi = f.Read(hi, 4);
    f.Write(hi, 4, 0xFFFFFFFF);
    mask |= uint64_t{f.Read(hi, 4)} << 32;
    f.Write(hi, 4, orig_hi);
  } else {
    mask |= 0xFFFFFFFF00000000ull;
  }
  mask &= b.kind == BarKind::kIo ? ~0x3ull : ~0xFull;
  return ~mask + 1;
}

struct SizingCase {
  BarKind kind;
  uint64_t size;
  bool prefetchable;
  uint32_t type_bits;
};

TEST_F(PciFunctionTest, SizingReturnsTheSizeAndTypeBitsForEveryBarKind) {
  const std::vector<SizingCase> cases = {
      {BarKind::kIo, 4, false, 0x1},
      {BarKind::kIo, 256, false, 0x1},
      {BarKind::kMem32, 4096, false, 0x0},
      {BarKind::kMem32, 1ull << 31, true, 0x8},
      {BarKind::kMem64, 4096, false, 0x4},
      {BarKind::kMem64, 16ull << 20, true, 0xC},
      {BarKind::kMem64, 4ull << 30, true, 0xC},
      {BarKind::kMem64, 128ull << 30, true, 0xC},
      {BarKind::kMem64, 512ull << 30, true, 0xC},
      {BarKind::kMem64, 1ull << 47, true, 0xC},
  };
  for (const SizingCase& c : cases) {
    DeviceSpec spec;
    spec.vendor_id = 0x1234;
    spec.bars = {{0, c.kind, c.size, c.prefetchable}};
    PciFunction f = Make(spec);
    EXPECT_EQ(SizeBar(f, spec.bars[0]), c.size) << c.size;
    f.Write(cfg::kBar0, 4, 0xFFFFFFFF);
    EXPECT_EQ(f.Read(cfg::kBar0, 4) & (c.kind == BarKind::kIo ? 0x3u : 0xFu), c.type_bits);
  }
}

TEST_F(PciFunctionTest, ProgrammedAddressSurvivesSizingAndDecodes) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  PciFunction f = Make(spec);
  f.ProgramBar(spec.bars[1], 0x20'0000'0000ull);
  EXPECT_EQ(f.BarAddress(spec.bars[1]), 0x20'0000'0000ull);
  EXPECT_EQ(SizeBar(f, spec.bars[1]), 128ull << 30);
  EXPECT_EQ(f.BarAddress(spec.bars[1]), 0x20'0000'0000ull);
  EXPECT_EQ(f.Read(BarOffset(1), 4) & 0xF, 0xCu);
}

TEST_F(PciFunctionTest, AddressBitsBelowTheSizeReadZero) {
  DeviceSpec spec;
  spec.vendor_id = 0x1234;
  spec.bars = {{2, BarKind::kMem32, 1 << 20, false}};
  PciFunction f = Make(spec);
  f.Write(BarOffset(2), 4, 0xC0012345);
  EXPECT_EQ(f.Read(BarOffset(2), 4), 0xC0000000u);
}

TEST_F(PciFunctionTest, RomBarSizesAndKeepsItsEnableBit) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  PciFunction f = Make(spec);
  f.Write(cfg::kRomBar, 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), ~uint32_t(512 * 1024 - 1) | 1u);
  f.Write(cfg::kRomBar, 4, 0xC1000001);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), 0xC1000001u);
  EXPECT_EQ(f.RomAddress(), 0xC1000000u);
}

TEST_F(PciFunctionTest, UnusedBarsAndNoRomReadZeroAndIgnoreWrites) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  spec.rom_size = 0;
  PciFunction f = Make(spec);
  f.Write(BarOffset(5), 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(BarOffset(5), 4), 0u);
  f.Write(cfg::kRomBar, 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), 0u);
}

TEST_F(PciFunctionTest, HeaderCarriesTheSpecIdsAndReadOnlyFieldsStay) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  EXPECT_EQ(f.Read(cfg::kVendorId, 4), 0x20B510DEu);
  EXPECT_EQ(f.Read(cfg::kRevisionId, 4), 0x030200A1u);
  f.Write(cfg::kVendorId, 4, 0);
  f.Write(cfg::kRevisionId, 4, 0);
  EXPECT_EQ(f.Read(cfg::kVendorId, 4), 0x20B510DEu);
  EXPECT_EQ(f.Read(cfg::kRevisionId, 4), 0x030200A1u);
  f.Write(cfg::kCommand, 2, 0xFFFF);
  EXPECT_EQ(f.Read(cfg::kCommand, 2), 0x0507u);
}

TEST_F(PciFunctionTest, CapabilityWalkFindsPmMsiPcieMsix) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  std::vector<uint32_t> ids;
  for (uint32_t at = f.Read(cfg::kCapabilitiesPointer, 1); at != 0 && ids.size() < 48;
       at = f.Read(static_cast<uint16_t>(at + 1), 1)) {
    ids.push_back(f.Read(static_cast<uint16_t>(at), 1));
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{0x01, 0x05, 0x10, 0x11}));
  EXPECT_EQ(f.Read(cfg::kExtendedCapabilities, 4) & 0xFFFF, 0x0003u);
  EXPECT_EQ(f.Read(cfg::kExtendedCapabilities, 4) >> 20, 0u);
}

TEST(DeviceSpecTest, ErrorsNameTheField) {
  DeviceSpec d = GpuLikeDevice("gpu0", 1);
  d.bars[1].size = 3 << 20;
  absl::Status st = ValidateDeviceSpec(d);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("devices[gpu0].bars[1].size"), std::string::npos) << st;
  d = GpuLikeDevice("gpu0", 1);
  d.bars[2].index = 2;  // BAR1 is 64-bit and takes BAR2
  EXPECT_NE(ValidateDeviceSpec(d).message().find("bars[2].index"), std::string::npos);
  d = GpuLikeDevice("gpu0", 32);
  EXPECT_NE(ValidateDeviceSpec(d).message().find("slot"), std::string::npos);
  d = GpuLikeDevice("gpu0", 1);
  d.vendor_id = 0xFFFF;
  EXPECT_NE(ValidateDeviceSpec(d).message().find("vendor_id"), std::string::npos);
  EXPECT_TRUE(ValidateDeviceSpec(GpuLikeDevice("ok", 2, 512ull << 30)).ok());
}

}  // namespace
}  // namespace pcivmm::pci

namespace pcivmm::pci {
namespace {

// Readers take no lock: under TSan this shows the atomic dword protocol is race-free, and a
// reader only ever sees whole values that were written.
TEST(PciFunctionConcurrencyTest, LockFreeReadersSeeOnlyWholeWrittenValues) {
  alignas(4) static uint8_t storage[kConfigSpaceSize];
  DeviceSpec spec;
  spec.vendor_id = 0x1234;
  spec.bars = {{0, BarKind::kMem32, 1 << 20, false}};
  PciFunction f(spec, absl::MakeSpan(storage));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint32_t i = 0; i < 20000; ++i) f.Write(cfg::kBar0, 4, (i & 1) ? 0xAAA00000 : 0x55500000);
    done = true;
  });
  while (!done) {
    const uint32_t v = f.Read(cfg::kBar0, 4);
    ASSERT_TRUE(v == 0 || v == 0xAAA00000 || v == 0x55500000) << std::hex << v;
  }
  writer.join();
}

}  // namespace
}  // namespace pcivmm::pci
