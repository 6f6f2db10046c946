#include "mmio/bus.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::mmio {
namespace {

// Records accesses and answers reads with the low byte of the offset repeated.
class RecordingDevice : public IoDevice {
 public:
  std::string_view Name() const override { return "rec"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int) override {
    last_offset = offset;
    std::memset(data.data(), static_cast<int>(offset & 0xFF), data.size());
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int) override {
    last_offset = offset;
    written.assign(data.begin(), data.end());
  }
  uint64_t last_offset = ~0ull;
  std::vector<uint8_t> written;
};

TEST(BusTest, DispatchesWithOffsetRelativeToBase) {
  Bus bus("pio", 0x10000);
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Register(0x500, 8, dev).ok());
  uint8_t buf[2];
  EXPECT_EQ(bus.Read(0x503, absl::MakeSpan(buf), 0), 0);
  EXPECT_EQ(dev->last_offset, 3u);
  EXPECT_EQ(buf[0], 3);
  const uint8_t w[4] = {1, 2, 3, 4};
  EXPECT_EQ(bus.Write(0x504, w, 0), 0);
  EXPECT_EQ(dev->written, (std::vector<uint8_t>{1, 2, 3, 4}));
}

TEST(BusTest, UnclaimedReadIsAllOnesAndCounted) {
  Bus bus("mmio", UINT64_MAX);
  uint8_t buf[4] = {};
  EXPECT_EQ(bus.Read(0x1000, absl::MakeSpan(buf), 0), Bus::kUnclaimed);
  for (uint8_t b : buf) EXPECT_EQ(b, 0xFF);
  EXPECT_EQ(bus.unclaimed_reads(), 1u);
}

TEST(BusTest, UnclaimedWriteIsDroppedAndCounted) {
  Bus bus("mmio", UINT64_MAX);
  const uint8_t w[1] = {7};
  EXPECT_EQ(bus.Write(0x1000, w, 0), Bus::kUnclaimed);
  EXPECT_EQ(bus.unclaimed_writes(), 1u);
}

TEST(BusTest, AccessStraddlingRegionEndIsUnclaimed) {
  Bus bus("pio", 0x10000);
  auto dev = std::make_shared<RecordingDevice>();
  ASSERT_TRUE(bus.Register(0x500, 4, dev).ok());
  uint8_t buf[4];
  EXPECT_EQ(bus.Read(0x502, absl::MakeSpan(buf), 0), Bus::kUnclaimed);
  EXPECT_EQ(dev->last_offset, ~0ull);
}

TEST(BusTest, OverlappingRegistrationIsRejected) {
  Bus bus("pio", 0x10000);
  ASSERT_TRUE(bus.Register(0x500, 8, std::make_shared<RecordingDevice>()).ok());
  auto st = bus.Register(0x507, 2, std::make_shared<RecordingDevice>());
  EXPECT_EQ(st.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(bus.Register(0x508, 2, std::make_shared<RecordingDevice>()).ok());
  EXPECT_TRUE(bus.Register(0x4FE, 2, std::make_shared<RecordingDevice>()).ok());
}

TEST(BusTest, RangesBeyondLimitOrWrappingAreRejected) {
  Bus bus("pio", 0x10000);
  auto dev = std::make_shared<RecordingDevice>();
  EXPECT_EQ(bus.Register(0xFFFF, 2, dev).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bus.Register(0x10, 0, dev).status().code(), absl::StatusCode::kInvalidArgument);
  Bus mmio("mmio", UINT64_MAX);
  EXPECT_EQ(mmio.Register(UINT64_MAX - 1, 4, dev).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BusTest, UnregisteredRangeBecomesUnclaimedAndIdIsNotReused) {
  Bus bus("pio", 0x10000);
  auto first = bus.Register(0x500, 4, std::make_shared<RecordingDevice>());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(bus.Unregister(*first).ok());
  uint8_t buf[1];
  EXPECT_EQ(bus.Read(0x500, absl::MakeSpan(buf), 0), Bus::kUnclaimed);
  auto second = bus.Register(0x500, 4, std::make_shared<RecordingDevice>());
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*first, *second);
  EXPECT_EQ(bus.Unregister(99).code(), absl::StatusCode::kNotFound);
}

TEST(AddressRangeTest, RejectsWrapAndEmpty) {
  EXPECT_FALSE(AddressRange::Make(UINT64_MAX, 2));
  EXPECT_FALSE(AddressRange::Make(5, 0));
  auto r = AddressRange::Make(0x1000, 0x1000);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->Contains(0x1FFC, 4));
  EXPECT_FALSE(r->Contains(0x1FFD, 4));
  EXPECT_FALSE(r->Contains(UINT64_MAX, 2));
}

}  // namespace
}  // namespace pcivmm::mmio

namespace pcivmm::mmio {
namespace {

TEST(BusViewTest, ViewSeesRegistrationsMadeAfterItWasCreated) {
  Bus bus("pio", 0x10000);
  Bus::View view(&bus);
  uint8_t b[1];
  EXPECT_EQ(view.Read(0x500, absl::MakeSpan(b), 0), Bus::kUnclaimed);
  auto dev = std::make_shared<RecordingDevice>();
  auto region = bus.Register(0x500, 1, dev);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(view.Read(0x500, absl::MakeSpan(b), 0), *region);
  ASSERT_TRUE(bus.Unregister(*region).ok());
  EXPECT_EQ(view.Read(0x500, absl::MakeSpan(b), 0), Bus::kUnclaimed);
}

// A device unregistered while a view still holds the old snapshot stays alive until the
// view moves on.
TEST(BusViewTest, UnregisteredDeviceLivesUntilTheViewRefreshes) {
  Bus bus("pio", 0x10000);
  Bus::View view(&bus);
  auto dev = std::make_shared<RecordingDevice>();
  std::weak_ptr<RecordingDevice> weak = dev;
  auto region = bus.Register(0x500, 1, std::move(dev));
  uint8_t b[1];
  ASSERT_EQ(view.Read(0x500, absl::MakeSpan(b), 0), *region);
  ASSERT_TRUE(bus.Unregister(*region).ok());
  EXPECT_FALSE(weak.expired());
  view.Read(0x500, absl::MakeSpan(b), 0);
  EXPECT_TRUE(weak.expired());
}

TEST(BusTest, MoveKeepsTheRegionIdAndDispatchesAtTheNewBase) {
  Bus bus("mmio", UINT64_MAX);
  auto dev = std::make_shared<RecordingDevice>();
  auto region = bus.Register(0x1000, 0x100, dev);
  ASSERT_TRUE(region.ok());
  ASSERT_TRUE(bus.Move(*region, 0x8000).ok());
  uint8_t buf[1];
  EXPECT_EQ(bus.Read(0x1004, absl::MakeSpan(buf), 0), Bus::kUnclaimed);
  EXPECT_EQ(bus.Read(0x8004, absl::MakeSpan(buf), 0), *region);
  EXPECT_EQ(dev->last_offset, 4u);
  EXPECT_EQ(bus.region_count(), 1);
}

TEST(BusTest, MoveOntoAnotherRangeFailsAndLeavesTheRangeWhereItWas) {
  Bus bus("mmio", 0x10000);
  auto a = bus.Register(0x1000, 0x100, std::make_shared<RecordingDevice>());
  auto b = bus.Register(0x2000, 0x100, std::make_shared<RecordingDevice>());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(bus.Move(*a, 0x2080).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(bus.Move(*a, 0xFFC0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bus.Move(99, 0x3000).code(), absl::StatusCode::kNotFound);
  uint8_t buf[1];
  EXPECT_EQ(bus.Read(0x1000, absl::MakeSpan(buf), 0), *a);
  ASSERT_TRUE(bus.Move(*a, 0x1080).ok());  // overlapping its own old range is fine
  EXPECT_EQ(bus.Read(0x1170, absl::MakeSpan(buf), 0), *a);
}

}  // namespace
}  // namespace pcivmm::mmio
