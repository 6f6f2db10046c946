#include "pci/bar_relocation.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace pcivmm::pci {
namespace {

using Kind = BarChange::Kind;

TEST(PlanBarChangeTest, FollowsTheBarAndKeepsAStaleMappingOnlyWhenAsked) {
  EXPECT_EQ(PlanBarChange(std::nullopt, std::nullopt, false), BarChange{});
  EXPECT_EQ(PlanBarChange(std::nullopt, 0x1000, false), (BarChange{Kind::kPlace, 0, 0x1000}));
  EXPECT_EQ(PlanBarChange(0x1000, 0x1000, false), BarChange{});
  EXPECT_EQ(PlanBarChange(0x1000, 0x2000, true), (BarChange{Kind::kMove, 0x1000, 0x2000}));
  EXPECT_EQ(PlanBarChange(0x1000, std::nullopt, false), (BarChange{Kind::kRemove, 0x1000, 0}));
  EXPECT_EQ(PlanBarChange(0x1000, std::nullopt, true), BarChange{});
}

// A mapping at one address at most; records every operation; fails the ones it is told to.
class FakeRelocator : public BarRelocator {
 public:
  absl::Status Place(uint64_t to) override {
    log.push_back(absl::StrFormat("place %#x", to));
    if (fail_places > 0) {
      --fail_places;
      return absl::ResourceExhaustedError("no slot");
    }
    at = to;
    return absl::OkStatus();
  }
  absl::Status Remove(uint64_t from) override {
    log.push_back(absl::StrFormat("remove %#x", from));
    if (fail_removes) return absl::InternalError("stuck");
    at.reset();
    return absl::OkStatus();
  }
  std::optional<uint64_t> at;
  int fail_places = 0;
  bool fail_removes = false;
  std::vector<std::string> log;
};

TEST(BarRelocatorTest, MoveIsRemoveThenPlace) {
  FakeRelocator r;
  r.at = 0x1000;
  EXPECT_TRUE(ApplyBarChange(r, {Kind::kMove, 0x1000, 0x1800}).ok());
  EXPECT_EQ(r.at, 0x1800u);
  EXPECT_EQ(r.log, (std::vector<std::string>{"remove 0x1000", "place 0x1800"}));
}

TEST(BarRelocatorTest, AFailedMoveRollsBackToTheOldAddressAndReportsWhy) {
  FakeRelocator r;
  r.at = 0x1000;
  r.fail_places = 1;
  const absl::Status st = ApplyBarChange(r, {Kind::kMove, 0x1000, 0x2000});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(r.at, 0x1000u);
  EXPECT_EQ(r.log, (std::vector<std::string>{"remove 0x1000", "place 0x2000", "place 0x1000"}));
}

TEST(BarRelocatorTest, AMoveWhoseRollbackFailsTooSaysTheMappingIsGone) {
  FakeRelocator r;
  r.at = 0x1000;
  r.fail_places = 2;
  const absl::Status st = ApplyBarChange(r, {Kind::kMove, 0x1000, 0x2000});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("the old mapping is gone too"), std::string::npos);
  EXPECT_FALSE(r.at);
}

TEST(BarRelocatorTest, AMoveThatCannotRemoveTheOldMappingChangesNothing) {
  FakeRelocator r;
  r.at = 0x1000;
  r.fail_removes = true;
  EXPECT_EQ(ApplyBarChange(r, {Kind::kMove, 0x1000, 0x2000}).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r.at, 0x1000u);
  EXPECT_EQ(r.log, (std::vector<std::string>{"remove 0x1000"}));
}

TEST(BarRelocatorTest, PlaceRemoveAndNothingGoStraightThrough) {
  FakeRelocator r;
  EXPECT_TRUE(ApplyBarChange(r, {}).ok());
  EXPECT_TRUE(r.log.empty());
  EXPECT_TRUE(ApplyBarChange(r, {Kind::kPlace, 0, 0x3000}).ok());
  EXPECT_EQ(r.at, 0x3000u);
  EXPECT_TRUE(ApplyBarChange(r, {Kind::kRemove, 0x3000, 0}).ok());
  EXPECT_FALSE(r.at);
}

}  // namespace
}  // namespace pcivmm::pci
