#include "pci/bridge.h"

#include "gtest/gtest.h"
#include "pci/config_space.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Memory base/limit dword 0x20 (and 0x24): base in bits 15:0, limit in bits 31:16.
constexpr uint32_t BaseLimit(uint32_t base, uint32_t limit) { return limit << 16 | base; }

mmio::AddressRange Range(uint64_t base, uint64_t size) {
  return *mmio::AddressRange::Make(base, size);
}

TEST(BridgeDecodeTest, BusNumbersAreTheLowThreeBytes) {
  BridgeRegisters r;
  r.buses = 0x40'05'02'01;  // latency 0x40 is not a bus number
  const BridgeBuses b = DecodeBridgeBuses(r);
  EXPECT_EQ(b.primary, 1);
  EXPECT_EQ(b.secondary, 2);
  EXPECT_EQ(b.subordinate, 5);
}

TEST(BridgeDecodeTest, BusesForwardsSecondaryThroughSubordinate) {
  const BridgeBuses b{0, 2, 5};
  EXPECT_FALSE(b.Forwards(0));
  EXPECT_FALSE(b.Forwards(1));
  EXPECT_TRUE(b.Forwards(2));
  EXPECT_TRUE(b.Forwards(5));
  EXPECT_FALSE(b.Forwards(6));
  // An unconfigured bridge (secondary 0) forwards nothing, not even bus 0.
  EXPECT_FALSE((BridgeBuses{0, 0, 0}.Forwards(0)));
}

// PCI-to-PCI Bridge 1.2, 3.2.5: memory base/limit bits 15:4 are address bits 31:20; the base's
// bits 19:0 are 0, the limit's F FFFFh.
TEST(BridgeDecodeTest, MemoryWindowHasOneMebibyteGranularity) {
  BridgeRegisters r;
  r.memory = BaseLimit(0xC010, 0xC010);
  EXPECT_EQ(DecodeBridgeWindows(r).memory, Range(0xC0100000, kMiB));
  r.memory = BaseLimit(0xC010, 0xC030);
  EXPECT_EQ(DecodeBridgeWindows(r).memory, Range(0xC0100000, 3 * kMiB));
  // The read-only low nibble takes no part in the address.
  r.memory = BaseLimit(0xC01F, 0xC01F);
  EXPECT_EQ(DecodeBridgeWindows(r).memory, Range(0xC0100000, kMiB));
}

TEST(BridgeDecodeTest, BaseAboveLimitClosesTheWindow) {
  BridgeRegisters r;
  r.memory = BaseLimit(0xFFF0, 0x0000);
  r.prefetch = BaseLimit(0xFFF1, 0x0001);
  r.io = 0x01F1;  // I/O base F000h, limit 0FFFh
  const BridgeWindows w = DecodeBridgeWindows(r);
  EXPECT_FALSE(w.memory.has_value());
  EXPECT_FALSE(w.prefetch.has_value());
  EXPECT_FALSE(w.io.has_value());
}

TEST(BridgeDecodeTest, PrefetchableWindowIs64BitWithTheUpperDwords) {
  BridgeRegisters r;
  r.prefetch = BaseLimit(0x0001, 0xFFF1);  // 64-bit: low nibble 1h
  r.prefetch_base_upper = 0x20;
  r.prefetch_limit_upper = 0x3F;
  EXPECT_EQ(DecodeBridgeWindows(r).prefetch,
            Range(0x20'0000'0000ull, 0x40'0000'0000ull - 0x20'0000'0000ull));
  // The upper dwords decide the order: base 20'FFF00000h is below limit 21'000FFFFFh.
  r.prefetch = BaseLimit(0xFFF1, 0x0001);
  r.prefetch_limit_upper = 0x21;
  EXPECT_EQ(DecodeBridgeWindows(r).prefetch, Range(0x20'FFF0'0000ull, 2 * kMiB));
}

TEST(BridgeDecodeTest, PrefetchableWindowWith32BitDecodeIgnoresTheUpperDwords) {
  BridgeRegisters r;
  r.prefetch = BaseLimit(0x8000, 0x80F0);  // low nibble 0h: 32-bit only
  r.prefetch_base_upper = 0x20;
  r.prefetch_limit_upper = 0x20;
  EXPECT_EQ(DecodeBridgeWindows(r).prefetch, Range(0x80000000, 16 * kMiB));
}

TEST(BridgeDecodeTest, PrefetchableWindowReachingTheTopOfTheAddressSpaceStaysOpen) {
  BridgeRegisters r;
  r.prefetch = BaseLimit(0x0001, 0xFFF1);
  r.prefetch_base_upper = 0xFFFFFFFF;
  r.prefetch_limit_upper = 0xFFFFFFFF;
  const auto w = DecodeBridgeWindows(r).prefetch;
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->base(), 0xFFFFFFFF'00000000ull);
  EXPECT_EQ(w->end(), UINT64_MAX);
}

// 3.2.5: I/O base/limit bits 7:4 are address bits 15:12 (4 KiB granularity); with 32-bit
// decode (low nibble 1h) the upper 16 bits come from 0x30 (base) and 0x32 (limit).
TEST(BridgeDecodeTest, IoWindowHasFourKibibyteGranularityAndUpper16Bits) {
  BridgeRegisters r;
  r.io = 0x3121;  // base 2000h, limit 3FFFh
  EXPECT_EQ(DecodeBridgeWindows(r).io, Range(0x2000, 0x2000));
  r.io_upper = 0x0002'0001;  // base upper 1, limit upper 2
  EXPECT_EQ(DecodeBridgeWindows(r).io, Range(0x1'2000, 0x2'4000 - 0x1'2000));
  r.io = 0x3020;  // 16-bit decode: the upper registers are not used
  EXPECT_EQ(DecodeBridgeWindows(r).io, Range(0x2000, 0x2000));
}

TEST(BridgeDecodeTest, CommandGatesTheWindows) {
  BridgeRegisters r;
  EXPECT_FALSE(DecodeBridgeWindows(r).memory_enabled);
  EXPECT_FALSE(DecodeBridgeWindows(r).io_enabled);
  r.command = cfg::kCommandMemory;
  EXPECT_TRUE(DecodeBridgeWindows(r).memory_enabled);
  EXPECT_FALSE(DecodeBridgeWindows(r).io_enabled);
  r.command = cfg::kCommandIo;
  EXPECT_FALSE(DecodeBridgeWindows(r).memory_enabled);
  EXPECT_TRUE(DecodeBridgeWindows(r).io_enabled);
}

class ForwardsMemoryTest : public ::testing::Test {
 protected:
  ForwardsMemoryTest() {
    w_.memory = Range(0xC0000000, 16 * kMiB);
    w_.prefetch = Range(0x20'0000'0000ull, 1ull << 30);
    w_.memory_enabled = true;
  }
  BridgeWindows w_;
};

TEST_F(ForwardsMemoryTest, InsideEitherWindow) {
  EXPECT_TRUE(w_.ForwardsMemory(0xC0000000, 16 * kMiB));
  EXPECT_TRUE(w_.ForwardsMemory(0xC0FFF000, 0x1000));
  EXPECT_TRUE(w_.ForwardsMemory(0x20'0000'0000ull, 1ull << 30));
}

TEST_F(ForwardsMemoryTest, StraddlingAnEdgeIsNotForwarded) {
  EXPECT_FALSE(w_.ForwardsMemory(0xBFFFF000, 0x2000));
  EXPECT_FALSE(w_.ForwardsMemory(0xC0FFF000, 0x2000));
  EXPECT_FALSE(w_.ForwardsMemory(0x20'0000'0000ull, (1ull << 30) + 1));
}

TEST_F(ForwardsMemoryTest, OutsideBothWindows) {
  EXPECT_FALSE(w_.ForwardsMemory(0xD0000000, 0x1000));
  EXPECT_FALSE(w_.ForwardsMemory(0x10'0000'0000ull, 0x1000));
  EXPECT_FALSE(w_.ForwardsMemory(UINT64_MAX - 0xFFF, 0x2000));  // wraps
}

TEST_F(ForwardsMemoryTest, NothingWithMemoryDecodeOff) {
  w_.memory_enabled = false;
  EXPECT_FALSE(w_.ForwardsMemory(0xC0000000, 0x1000));
  EXPECT_FALSE(w_.ForwardsMemory(0x20'0000'0000ull, 0x1000));
}

TEST_F(ForwardsMemoryTest, NothingThroughClosedWindows) {
  w_.memory.reset();
  w_.prefetch.reset();
  EXPECT_FALSE(w_.ForwardsMemory(0xC0000000, 0x1000));
}

}  // namespace
}  // namespace pcivmm::pci
