#include "vmm/boot/aml.h"

#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcivmm::boot::aml {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// Bytes of `body_size` zeros wrapped as a Scope body would be: only the PkgLength matters.
TEST(PkgLengthTest, OneByteFormCountsItselfUpTo63) {
  EXPECT_THAT(PkgLength(0), ElementsAre(0x01));
  EXPECT_THAT(PkgLength(8), ElementsAre(0x09));
  EXPECT_THAT(PkgLength(62), ElementsAre(0x3F));
}

// ACPI 6.4, 20.2.4: two bytes carry 12 bits: lead byte 0b01 in bits 7:6 and the low nybble,
// then bits 11:4.
TEST(PkgLengthTest, TwoByteFormAbove63) {
  EXPECT_THAT(PkgLength(63), ElementsAre(0x41, 0x04));     // 65 = 0x041
  EXPECT_THAT(PkgLength(0xFFD), ElementsAre(0x4F, 0xFF));  // 0xFFF, the largest
}

TEST(PkgLengthTest, ThreeAndFourByteForms) {
  EXPECT_THAT(PkgLength(0xFFE), ElementsAre(0x81, 0x00, 0x01));          // 0x1001
  EXPECT_THAT(PkgLength(0xFFFFC), ElementsAre(0x8F, 0xFF, 0xFF));        // 0xFFFFF
  EXPECT_THAT(PkgLength(0xFFFFD), ElementsAre(0xC1, 0x00, 0x00, 0x01));  // 0x100001
}

// ACPI 6.4, 19.6.35: EISAID("PNP0A08") is the DWord 0x080AD041 (bytes 41 D0 0A 08).
TEST(EisaIdTest, CompressesPnpIds) {
  EXPECT_EQ(EisaId("PNP0A08").value(), 0x080AD041u);
  EXPECT_EQ(EisaId("PNP0A03").value(), 0x030AD041u);
  EXPECT_EQ(EisaId("PNP0C02").value(), 0x020CD041u);
  EXPECT_EQ(EisaId("PNP0501").value(), 0x0105D041u);
  EXPECT_THAT(EisaIdConst("PNP0A08"), ElementsAre(0x0C, 0x41, 0xD0, 0x0A, 0x08));
}

TEST(EisaIdTest, RejectsMalformedIds) {
  EXPECT_FALSE(CompressEisaId("pnp0a08").has_value());
  EXPECT_FALSE(CompressEisaId("PNP0A0").has_value());
  EXPECT_FALSE(CompressEisaId("PNP0G08").has_value());
  EXPECT_FALSE(CompressEisaId("P1P0A08").has_value());
  EXPECT_TRUE(CompressEisaId("ABC0FFF").has_value());
}

TEST(IntegerTest, UsesTheShortestConstant) {
  EXPECT_THAT(Integer(0), ElementsAre(0x00));  // ZeroOp
  EXPECT_THAT(Integer(1), ElementsAre(0x01));  // OneOp
  EXPECT_THAT(Integer(2), ElementsAre(0x0A, 0x02));
  EXPECT_THAT(Integer(0xFF), ElementsAre(0x0A, 0xFF));
  EXPECT_THAT(Integer(0x100), ElementsAre(0x0B, 0x00, 0x01));
  EXPECT_THAT(Integer(0xFFFF), ElementsAre(0x0B, 0xFF, 0xFF));
  EXPECT_THAT(Integer(0x10000), ElementsAre(0x0C, 0x00, 0x00, 0x01, 0x00));
  EXPECT_THAT(Integer(0xFFFFFFFF), ElementsAre(0x0C, 0xFF, 0xFF, 0xFF, 0xFF));
  EXPECT_THAT(Integer(0x1'2345'6789),
              ElementsAre(0x0E, 0x89, 0x67, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00));
}

TEST(StringTest, IsPrefixedAndNulTerminated) {
  EXPECT_THAT(String("ab"), ElementsAre(0x0D, 'a', 'b', 0x00));
}

TEST(NameTest, EncodesSegmentsPrefixesAndPadding) {
  EXPECT_THAT(EncodeName("_HID"), ElementsAre('_', 'H', 'I', 'D'));
  EXPECT_THAT(EncodeName("\\_SB"), ElementsAre('\\', '_', 'S', 'B', '_'));
  EXPECT_THAT(EncodeName("^PCI0"), ElementsAre('^', 'P', 'C', 'I', '0'));
  EXPECT_THAT(EncodeName("\\_SB.PCI0"),
              ElementsAre('\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'));
  EXPECT_THAT(EncodeName("_SB.PCI0.S08"),
              ElementsAre(0x2F, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'S', '0', '8', '_'));
}

TEST(NameTest, ValidatesNamePaths) {
  EXPECT_TRUE(IsValidNamePath("\\_SB.PCI0"));
  EXPECT_TRUE(IsValidNamePath("^^COM1"));
  EXPECT_FALSE(IsValidNamePath(""));
  EXPECT_FALSE(IsValidNamePath("\\"));
  EXPECT_FALSE(IsValidNamePath("1ABC"));
  EXPECT_FALSE(IsValidNamePath("ABCDE"));
  EXPECT_FALSE(IsValidNamePath("_SB..PCI0"));
  EXPECT_FALSE(IsValidNamePath("pci0"));
  EXPECT_FALSE(IsValidNamePath("\\^PCI0"));
}

// Name (_HID, EisaId ("PNP0A08")) as every ASL compiler emits it.
TEST(TermTest, NameWithEisaId) {
  EXPECT_THAT(Name("_HID", EisaIdConst("PNP0A08")),
              ElementsAre(0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x08));
}

// Method (_STA, 0, NotSerialized) { Return (0x0F) }
TEST(TermTest, MethodReturningByte) {
  EXPECT_THAT(Method("_STA", 0, false, {Return(Integer(0x0F))}),
              ElementsAre(0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xA4, 0x0A, 0x0F));
  EXPECT_THAT(Method("_DSM", 4, true, {}), ElementsAre(0x14, 0x06, '_', 'D', 'S', 'M', 0x0C));
}

TEST(TermTest, DeviceAndScope) {
  EXPECT_THAT(Device("PCI0", {}), ElementsAre(0x5B, 0x82, 0x05, 'P', 'C', 'I', '0'));
  EXPECT_THAT(Scope("\\_SB", {Name("_UID", Integer(0))}),
              ElementsAre(0x10, 0x0C, '\\', '_', 'S', 'B', '_', 0x08, '_', 'U', 'I', 'D', 0x00));
}

TEST(TermTest, ScopeWithTwoBytePkgLength) {
  const Bytes big(100, 0xA3);  // 100 Noop bytes
  const Bytes s = Scope("_SB", {big});
  ASSERT_EQ(s.size(), 1u + 2 + 4 + 100);
  EXPECT_EQ(s[0], 0x10);
  EXPECT_EQ(s[1], 0x40 | ((2 + 4 + 100) & 0xF));
  EXPECT_EQ(s[2], (2 + 4 + 100) >> 4);
}

// Name (\_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })
TEST(TermTest, SleepPackage) {
  EXPECT_THAT(Name("\\_S5", Package({Integer(5), Integer(5), Integer(0), Integer(0)})),
              ElementsAre(0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05,
                          0x00, 0x00));
}

TEST(TermTest, BufferCarriesItsSize) {
  EXPECT_THAT(Buffer({1, 2, 3}), ElementsAre(0x11, 0x06, 0x0A, 0x03, 1, 2, 3));
}

TEST(ResourceTest, WordBusNumber) {
  EXPECT_THAT(WordBusNumber(0, 0xFF),
              ElementsAreArray({0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF,
                                0x00, 0x00, 0x00, 0x00, 0x01}));
}

TEST(ResourceTest, IoAndWordIo) {
  EXPECT_THAT(Io(0xCF8, 0xCF8, 1, 8), ElementsAre(0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08));
  EXPECT_THAT(WordIo(0xC000, 0xFFFF),
              ElementsAreArray({0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0xC0, 0xFF,
                                0xFF, 0x00, 0x00, 0x00, 0x40}));
}

TEST(ResourceTest, DWordMemoryNonCacheable) {
  EXPECT_THAT(
      DWordMemory(0xC000'0000, 0xDFFF'FFFF, Caching::kNonCacheable),
      ElementsAreArray({0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0,    0x00, 0x00, 0x00,
                        0xC0, 0xFF, 0xFF, 0xFF, 0xDF, 0,    0, 0, 0, 0x00, 0x00, 0x00, 0x20}));
}

TEST(ResourceTest, QWordMemoryPrefetchable) {
  const Bytes q = QWordMemory(0x40'0000'0000, 0x7F'FFFF'FFFF, Caching::kPrefetchable);
  ASSERT_EQ(q.size(), 46u);
  EXPECT_THAT(Bytes(q.begin(), q.begin() + 6), ElementsAre(0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x07));
  EXPECT_THAT(Bytes(q.begin() + 14, q.begin() + 22),  // _MIN
              ElementsAre(0, 0, 0, 0, 0x40, 0, 0, 0));
  EXPECT_THAT(Bytes(q.begin() + 38, q.end()),  // _LEN
              ElementsAre(0, 0, 0, 0, 0x40, 0, 0, 0));
}

TEST(ResourceTest, Memory32FixedIrqAndInterrupt) {
  EXPECT_THAT(Memory32Fixed(true, 0xE000'0000, 0x10'0000),
              ElementsAre(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xE0, 0x00, 0x00, 0x10, 0x00));
  EXPECT_THAT(IrqNoFlags(1u << 4), ElementsAre(0x22, 0x10, 0x00));
  const uint32_t gsis[] = {5, 0x10};
  EXPECT_THAT(Interrupt({.edge = false, .active_low = true, .shared = true}, gsis),
              ElementsAre(0x89, 0x0A, 0x00, 0x0D, 0x02, 5, 0, 0, 0, 0x10, 0, 0, 0));
}

// ResourceTemplate () { IRQNoFlags () {4} }: Buffer (0x05) { 22 10 00 79 55 }.
TEST(ResourceTest, TemplateEndsWithChecksummedEndTag) {
  const Bytes t = ResourceTemplate({IrqNoFlags(1u << 4)});
  EXPECT_THAT(t, ElementsAre(0x11, 0x08, 0x0A, 0x05, 0x22, 0x10, 0x00, 0x79, 0x55));
  const Bytes big = ResourceTemplate({WordBusNumber(0, 7), Io(0x3F8, 0x3F8, 1, 8)});
  const auto data_begin = big.begin() + 4;  // BufferOp, PkgLength, BytePrefix, size
  EXPECT_EQ(std::accumulate(data_begin, big.end(), 0u) % 256, 0u);
  EXPECT_EQ(big[big.size() - 2], 0x79);
}

}  // namespace
}  // namespace pcivmm::boot::aml
