#include "vmm/platform/boot_watchdog.h"

#include <linux/kvm.h>

#include <atomic>
#include <string>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace pcivmm::platform {
namespace {

TEST(ParseBootTimeoutTest, EmptyAndZeroTurnTheWatchdogOff) {
  EXPECT_EQ(*ParseBootTimeout(""), absl::ZeroDuration());
  EXPECT_EQ(*ParseBootTimeout("0"), absl::ZeroDuration());
}

TEST(ParseBootTimeoutTest, AcceptsDurations) {
  EXPECT_EQ(*ParseBootTimeout("1s"), absl::Seconds(1));
  EXPECT_EQ(*ParseBootTimeout("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseBootTimeout("1500ms"), absl::Milliseconds(1500));
}

TEST(ParseBootTimeoutTest, RejectsNonDurationsAndNegativesNamingTheFlag) {
  for (const char* bad : {"10", "soon", "-1s", "1 s"}) {
    auto d = ParseBootTimeout(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("--boot-timeout"), std::string::npos);
  }
}

TEST(LastConsoleLineTest, TakesTheLastNonBlankLine) {
  EXPECT_EQ(LastConsoleLine("first\nsecond\n"), "second");
  EXPECT_EQ(LastConsoleLine("first\nsecond"), "second");
  EXPECT_EQ(LastConsoleLine("first\nsecond\n\n  \t\n"), "second");
  EXPECT_EQ(LastConsoleLine("only"), "only");
}

TEST(LastConsoleLineTest, NothingPrintedIsEmpty) {
  EXPECT_EQ(LastConsoleLine(""), "");
  EXPECT_EQ(LastConsoleLine("\n\n \r\n"), "");
}

TEST(LastConsoleLineTest, StripsCarriageReturnsAndBlanks) {
  EXPECT_EQ(LastConsoleLine("[    0.1] a\r\n[    0.2] b  \r\n"), "[    0.2] b");
  EXPECT_EQ(LastConsoleLine("progress 10%\rprogress 20%"), "progress 20%");
}

TEST(LastConsoleLineTest, ReplacesWhatIsNotPrintableAscii) {
  EXPECT_EQ(LastConsoleLine("\x1b[1mbold\x1b[0m caf\xc3\xa9\n"), "?[1mbold?[0m caf??");
}

TEST(LastConsoleLineTest, CutsLongLines) {
  const std::string line = LastConsoleLine(std::string(1000, 'x') + "\n");
  EXPECT_EQ(line.size(), kMaxConsoleLine);
  EXPECT_EQ(line.substr(kMaxConsoleLine - 3), "...");
}

TEST(FormatBootTimeoutReportTest, OneLineForTheTimeoutTheConsoleAndEachVcpu) {
  BootTimeoutReport r{absl::Seconds(1), "spin: vcpu 1 spins", {}};
  r.vcpus.push_back({0, 0x100046, KVM_EXIT_IO, 2});
  r.vcpus.push_back({1, std::nullopt, kvm::VcpuExitStats::kNoExit, 0});
  EXPECT_EQ(FormatBootTimeoutReport(r, "pcivmm: "),
            "pcivmm: boot timeout after 1s: no boot marker\n"
            "pcivmm:   last console line: \"spin: vcpu 1 spins\"\n"
            "pcivmm:   vcpu 0: rip 0x100046, last exit IO, 2 exits\n"
            "pcivmm:   vcpu 1: rip unknown (did not park), last exit none, 0 exits\n");
}

TEST(FormatBootTimeoutReportTest, SaysSoWhenTheGuestPrintedNothing) {
  BootTimeoutReport r{absl::Minutes(2), "", {{0, 0xffffffff81000000, KVM_EXIT_HLT, 7}}};
  EXPECT_EQ(FormatBootTimeoutReport(r, ""),
            "boot timeout after 2m: no boot marker\n"
            "  last console line: none (the guest printed nothing)\n"
            "  vcpu 0: rip 0xffffffff81000000, last exit HLT, 7 exits\n");
}

TEST(BootWatchdogTest, FiresOnceAfterTheTimeout) {
  std::atomic<int> fired{0};
  absl::Notification done;
  BootWatchdog w(absl::Milliseconds(20), [&] {
    ++fired;
    done.Notify();
  });
  const absl::Time start = absl::Now();
  w.Arm();
  w.Arm();  // a second Arm changes nothing
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  w.Stop();
  EXPECT_EQ(fired.load(), 1);
}

TEST(BootWatchdogTest, CancelBeforeTheTimeoutNeverFiresAndStopsAtOnce) {
  std::atomic<int> fired{0};
  BootWatchdog w(absl::Hours(1), [&] { ++fired; });
  w.Arm();
  const absl::Time start = absl::Now();
  w.Cancel();
  w.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));  // no waiting out the hour
  EXPECT_EQ(fired.load(), 0);
}

TEST(BootWatchdogTest, StopAloneEndsAnArmedWatchdog) {
  std::atomic<int> fired{0};
  {
    BootWatchdog w(absl::Hours(1), [&] { ++fired; });
    w.Arm();
  }  // the destructor stops it
  EXPECT_EQ(fired.load(), 0);
}

TEST(BootWatchdogTest, ArmAfterCancelDoesNothing) {
  std::atomic<int> fired{0};
  BootWatchdog w(absl::ZeroDuration(), [&] { ++fired; });
  w.Cancel();
  w.Arm();
  w.Stop();
  EXPECT_EQ(fired.load(), 0);
}

}  // namespace
}  // namespace pcivmm::platform
