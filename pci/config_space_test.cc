#include "pci/config_space.h"

#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::pci {
namespace {

class ConfigSpaceTest : public ::testing::Test {
 protected:
  alignas(4) uint8_t storage_[kConfigSpaceSize];
  ConfigSpace c_{absl::MakeSpan(storage_)};
};

// Every width at every alignment over the edge offsets of the table.
TEST_F(ConfigSpaceTest, ValidAccessMatchesTheSpecOverEdgeOffsets) {
  const std::vector<uint32_t> offsets = {0x00, 0x01, 0x02, 0x03,  0x04,  0x05,  0x06,  0x07,
                                         0x10, 0x13, 0x14, 0x17,  0x24,  0x27,  0x30,  0xFC,
                                         0xFD, 0xFE, 0xFF, 0x100, 0xFFC, 0xFFD, 0xFFE, 0xFFF};
  for (uint32_t off : offsets) {
    for (uint32_t width : {1u, 2u, 3u, 4u, 8u}) {
      const bool expect = (width == 1 || width == 2 || width == 4) && (off % 4) + width <= 4;
      EXPECT_EQ(ConfigSpace::ValidAccess(off, width), expect) << off << " " << width;
    }
  }
  EXPECT_FALSE(ConfigSpace::ValidAccess(0x1000, 1));
}

TEST_F(ConfigSpaceTest, ReadsOfEveryWidthSeeLittleEndianBytes) {
  c_.Set(0x40, 4, 0x44332211);
  EXPECT_EQ(c_.Read(0x40, 4), 0x44332211u);
  EXPECT_EQ(c_.Read(0x40, 2), 0x2211u);
  EXPECT_EQ(c_.Read(0x42, 2), 0x4433u);
  EXPECT_EQ(c_.Read(0x41, 2), 0x3322u);
  EXPECT_EQ(c_.Read(0x43, 1), 0x44u);
}

TEST_F(ConfigSpaceTest, ReadOnlyBytesIgnoreWrites) {
  c_.Set(0x00, 4, 0xABCD1234);
  c_.Write(0x00, 4, 0);
  c_.Write(0x02, 2, 0xFFFF);
  EXPECT_EQ(c_.Read(0x00, 4), 0xABCD1234u);
}

TEST_F(ConfigSpaceTest, WritableBitsTakeOnlyMaskedBitsAtEveryWidth) {
  c_.SetWritable(0x44, 4, 0x00FF0F0F);
  for (uint8_t width : {uint8_t{1}, uint8_t{2}, uint8_t{4}}) {
    for (uint16_t off = 0x44; off + width <= 0x48; off = static_cast<uint16_t>(off + width)) {
      c_.Set(0x44, 4, 0);
      c_.Write(off, width, 0xFFFFFFFF);
      const uint32_t mask = (width == 4 ? 0xFFFFFFFFu : ((1u << (8 * width)) - 1))
                            << (8 * (off - 0x44));
      EXPECT_EQ(c_.Read(0x44, 4), 0x00FF0F0Fu & mask) << off << " " << int{width};
    }
  }
}

TEST_F(ConfigSpaceTest, WriteOneToClearClearsOnlyWrittenOnes) {
  c_.Set(0x06, 2, 0xF910);
  c_.SetWriteOneToClear(0x06, 2, 0xF900);
  c_.Write(0x06, 2, 0x0100);
  EXPECT_EQ(c_.Read(0x06, 2), 0xF810u);
  c_.Write(0x06, 2, 0x0000);
  EXPECT_EQ(c_.Read(0x06, 2), 0xF810u);
  c_.Write(0x07, 1, 0xFF);
  EXPECT_EQ(c_.Read(0x06, 2), 0x0010u);  // capability bit 4 is not RW1C
}

TEST_F(ConfigSpaceTest, CapabilityListIsLinkedAndTerminated) {
  const uint8_t body[6] = {1, 2, 3, 4, 5, 6};
  const uint8_t a = c_.AddCapability(0x01, body);
  const uint8_t b = c_.AddCapability(0x05, body);
  EXPECT_EQ(c_.Read(0x34, 1), a);
  EXPECT_EQ(c_.Read(a, 1), 0x01u);
  EXPECT_EQ(c_.Read(a + 1, 1), b);
  EXPECT_EQ(c_.Read(b + 1, 1), 0u);
  EXPECT_EQ(a % 4, 0);
  EXPECT_EQ(b % 4, 0);
  EXPECT_NE(c_.Read(0x06, 2) & 0x10, 0u);
}

TEST_F(ConfigSpaceTest, ExtendedCapabilitiesStartAt0x100AndTerminate) {
  const uint8_t body[8] = {};
  EXPECT_EQ(c_.AddExtendedCapability(0x0003, 1, body), 0x100);
  const uint16_t second = c_.AddExtendedCapability(0x000B, 1, body);
  const uint32_t header = c_.Read(0x100, 4);
  EXPECT_EQ(header & 0xFFFF, 0x0003u);
  EXPECT_EQ((header >> 16) & 0xF, 1u);
  EXPECT_EQ(header >> 20, second);
  EXPECT_EQ(c_.Read(second, 4) >> 20, 0u);
}

TEST_F(ConfigSpaceTest, ConventionalSpaceRefusesCapabilitiesThatDoNotFit) {
  std::vector<uint8_t> big(0xB0);
  EXPECT_NE(c_.AddCapability(0x10, big), 0);
  EXPECT_EQ(c_.AddCapability(0x10, big), 0);
}

}  // namespace
}  // namespace pcivmm::pci
