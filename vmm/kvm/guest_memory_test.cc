#include "vmm/kvm/guest_memory.h"

#include "gtest/gtest.h"

namespace pcivmm::kvm {
namespace {

TEST(GuestMemoryTest, SmallRamIsOneRegionFromZero) {
  auto m = GuestMemory::Create(64 << 20);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->regions().size(), 1u);
  EXPECT_EQ(m->end(), 64u << 20);
}

TEST(GuestMemoryTest, LargeRamSplitsAroundThePciHole) {
  auto m = GuestMemory::Create(4ull << 30);  // MAP_NORESERVE: costs nothing untouched
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->regions().size(), 2u);
  EXPECT_EQ(m->regions()[0].gpa.end(), kLowRamLimit);
  EXPECT_EQ(m->regions()[1].gpa.base(), kHighRamBase);
  EXPECT_EQ(m->end(), kHighRamBase + (1ull << 30));
  EXPECT_FALSE(m->Translate(kLowRamLimit, 1).ok());
  EXPECT_TRUE(m->Translate(kHighRamBase, 8).ok());
}

TEST(GuestMemoryTest, TranslateRejectsRangesLeavingRam) {
  auto m = GuestMemory::Create(2 << 20);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->Translate((2 << 20) - 8, 8).ok());
  EXPECT_EQ(m->Translate((2 << 20) - 7, 8).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_FALSE(m->Translate(UINT64_MAX - 3, 8).ok());
}

TEST(GuestMemoryTest, WriteLandsInHostMemory) {
  auto m = GuestMemory::Create(2 << 20);
  ASSERT_TRUE(m.ok());
  const uint8_t bytes[3] = {1, 2, 3};
  ASSERT_TRUE(m->Write(0x1000, bytes).ok());
  EXPECT_EQ((*m->Translate(0x1002, 1))[0], 3);
}

TEST(GuestMemoryTest, BadSizesAreInvalid) {
  EXPECT_EQ(GuestMemory::Create(1 << 20).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GuestMemory::Create((2 << 20) + 4096).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcivmm::kvm
