#include "vmm/run_control.h"

#include "gtest/gtest.h"

namespace pcivmm {
namespace {

TEST(RunControlTest, FirstStopWinsAndKicksOnce) {
  RunControl c;
  int kicks = 0;
  c.SetKicker([&kicks] { ++kicks; });
  EXPECT_FALSE(c.stop_requested());
  c.RequestStop({3, "first"});
  c.RequestStop({4, "second"});
  EXPECT_TRUE(c.stop_requested());
  EXPECT_EQ(kicks, 1);
  ASSERT_TRUE(c.reason());
  EXPECT_EQ(c.reason()->exit_code, 3);
}

}  // namespace
}  // namespace pcivmm
