#include "mmio/memslot_table.h"

#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::mmio {
namespace {

class FakeBackend : public MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& r) override {
    if (fail_next) {
      fail_next = false;
      return absl::InternalError("injected");
    }
    calls.push_back(r);
    return absl::OkStatus();
  }
  std::vector<kvm_userspace_memory_region> calls;
  bool fail_next = false;
};

void* Host(uint64_t v) { return reinterpret_cast<void*>(v); }

TEST(MemslotTableTest, InstallPassesReadOnlyFlagAndAddresses) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 8);
  auto id = t.Install(0xE0000000, 0x100000, Host(0x7f0000000000), /*read_only=*/true);
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(kvm.calls.size(), 1u);
  EXPECT_EQ(kvm.calls[0].slot, *id);
  EXPECT_EQ(kvm.calls[0].flags, KVM_MEM_READONLY);
  EXPECT_EQ(kvm.calls[0].guest_phys_addr, 0xE0000000u);
  EXPECT_EQ(kvm.calls[0].memory_size, 0x100000u);
}

TEST(MemslotTableTest, OverlapIsRejectedWithoutCallingKvm) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 8);
  ASSERT_TRUE(t.Install(0x10000, 0x10000, Host(0x100000), false).ok());
  auto st = t.Install(0x1F000, 0x2000, Host(0x200000), false);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(kvm.calls.size(), 1u);
}

TEST(MemslotTableTest, MisalignedOrWrappingRangeIsInvalid) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 8);
  EXPECT_EQ(t.Install(0x10001, 0x1000, Host(0x1000), false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Install(0x10000, 0x1001, Host(0x1000), false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.Install(0xFFFFFFFFFFFFF000, 0x2000, Host(0x1000), false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MemslotTableTest, RemoveSendsZeroSizeAndFreesTheId) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 2);
  auto a = t.Install(0x0, 0x1000, Host(0x1000), false);
  auto b = t.Install(0x1000, 0x1000, Host(0x2000), false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(t.Install(0x2000, 0x1000, Host(0x3000), false).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(t.Remove(*a).ok());
  EXPECT_EQ(kvm.calls.back().memory_size, 0u);
  EXPECT_EQ(kvm.calls.back().slot, *a);
  auto c = t.Install(0x2000, 0x1000, Host(0x3000), false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, *a);  // reused only once it was free
  EXPECT_EQ(t.Remove(77).code(), absl::StatusCode::kNotFound);
}

TEST(MemslotTableTest, FailedIoctlLeavesNoSlotAndFreesId) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 1);
  kvm.fail_next = true;
  EXPECT_FALSE(t.Install(0x0, 0x1000, Host(0x1000), false).ok());
  EXPECT_TRUE(t.List().empty());
  EXPECT_TRUE(t.Install(0x0, 0x1000, Host(0x1000), false).ok());
}

TEST(MemslotTableTest, FindOverlapReportsTheSlot) {
  FakeBackend kvm;
  MemslotTable t(&kvm, 4);
  ASSERT_TRUE(t.Install(0x4000, 0x2000, Host(0x1000), true).ok());
  auto hit = t.FindOverlap(*AddressRange::Make(0x5000, 0x10));
  ASSERT_TRUE(hit);
  EXPECT_TRUE(hit->read_only);
  EXPECT_FALSE(t.FindOverlap(*AddressRange::Make(0x6000, 0x1000)));
}

}  // namespace
}  // namespace pcivmm::mmio
