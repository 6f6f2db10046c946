#include "vmm/devices/boot_marker.h"

#include <vector>

#include "gtest/gtest.h"
#include "mmio/io_bytes.h"
#include "vmm/base/platform_layout.h"

namespace pcivmm::devices {
namespace {

TEST(BootMarkerTest, FirstMarkerWriteRecordsBootTimeAndNotifies) {
  std::vector<uint64_t> seen;
  BootMarker m(MonotonicNowNs(), [&](uint64_t ns, int) { seen.push_back(ns); });
  EXPECT_FALSE(m.boot_ns().has_value());
  mmio::WriteByte(m, 0, base::layout::kBootMarkerValue);
  ASSERT_TRUE(m.boot_ns().has_value());
  const uint64_t first = *m.boot_ns();
  mmio::WriteByte(m, 0, base::layout::kBootMarkerValue);
  EXPECT_EQ(*m.boot_ns(), first);  // the first marker is the boot time
  EXPECT_EQ(m.marks(), 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], first);
  EXPECT_GE(seen[1], first);
}

// The guest ABI's uptime dword at +4 and the marker at +0 both land in the boot profile.
TEST(BootMarkerTest, TheGuestsUptimeAndTheMarkerGoIntoTheBootProfile) {
  base::BootProfile profile;
  BootMarker m(MonotonicNowNs(), nullptr, &profile);
  const uint32_t uptime_us = 1'234'567;
  m.Write(4, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(&uptime_us), 4), 0);
  EXPECT_EQ(profile.guest_uptime_ns(), int64_t{1'234'567'000});
  EXPECT_FALSE(profile.ns(base::BootPhase::kBootMarker).has_value());
  EXPECT_EQ(m.bad_writes(), 0u);
  mmio::WriteByte(m, 0, base::layout::kBootMarkerValue);
  EXPECT_TRUE(profile.ns(base::BootPhase::kBootMarker).has_value());
}

TEST(BootMarkerTest, ALaterListenerIsTheOneNotified) {
  int first = 0, second = 0;
  BootMarker m(MonotonicNowNs(), [&](uint64_t, int) { ++first; });
  m.SetListener([&](uint64_t, int vcpu) { second += vcpu; });
  m.Write(0, std::vector<uint8_t>{base::layout::kBootMarkerValue}, 3);
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 3);
}

TEST(BootMarkerTest, OtherValuesAndWidthsAreCountedNotMarked) {
  BootMarker m(MonotonicNowNs());
  mmio::WriteByte(m, 0, 7);
  const uint8_t wide[2] = {base::layout::kBootMarkerValue, 0};
  m.Write(0, wide, 0);
  EXPECT_FALSE(m.boot_ns().has_value());
  EXPECT_EQ(m.bad_writes(), 2u);
  EXPECT_EQ(m.marks(), 0u);
}

TEST(BootMarkerTest, ReadReturnsMarkerValue) {
  BootMarker m(MonotonicNowNs());
  EXPECT_EQ(mmio::ReadByte(m, 0), base::layout::kBootMarkerValue);
}

}  // namespace
}  // namespace pcivmm::devices
