#include "vmm/platform/pc_devices.h"

#include "gtest/gtest.h"

namespace pcivmm::platform {
namespace {

TEST(PanicLineTest, FindsLinuxPanicMessageUpToTheLineEnd) {
  const std::string console =
      "[    1.0] Run /init as init process\r\n"
      "[    2.5] Kernel panic - not syncing: sysrq triggered crash\r\n"
      "[    2.6] Rebooting in 1 seconds..\r\n";
  EXPECT_EQ(PanicLine(console), "Kernel panic - not syncing: sysrq triggered crash");
}

TEST(PanicLineTest, NoPanicNoLine) {
  EXPECT_EQ(PanicLine("[    1.0] reboot: Power down\r\n"), std::nullopt);
  EXPECT_EQ(PanicLine(""), std::nullopt);
}

TEST(PanicLineTest, PanicAtTheVeryEndWithoutNewline) {
  EXPECT_EQ(PanicLine("x\nKernel panic - not syncing: VFS"), "Kernel panic - not syncing: VFS");
}

}  // namespace
}  // namespace pcivmm::platform
