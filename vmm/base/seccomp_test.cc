#include "vmm/base/seccomp.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace pcivmm::base {
namespace {

TEST(Seccomp, ParsesModesAndNamesTheFlag) {
  EXPECT_EQ(*ParseSeccompMode("off"), SeccompMode::kOff);
  EXPECT_EQ(*ParseSeccompMode("kill"), SeccompMode::kKill);
  EXPECT_EQ(*ParseSeccompMode("log"), SeccompMode::kLog);
  absl::StatusOr<SeccompMode> bad = ParseSeccompMode("strict");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--seccomp"), std::string::npos);
}

// Filters stack, so a vCPU thread passes both lists: its own must lie inside the process's.
TEST(Seccomp, VcpuListLiesInsideTheProcessList) {
  auto process = SeccompAllowList(SeccompRole::kProcess);
  std::set<std::string> allowed(process.begin(), process.end());
  for (const char* name : SeccompAllowList(SeccompRole::kVcpu)) {
    EXPECT_TRUE(allowed.count(name)) << name;
  }
  for (const char* forbidden :
       {"execve", "fork", "vfork", "ptrace", "mount", "bpf", "kexec_load"}) {
    EXPECT_FALSE(allowed.count(forbidden)) << forbidden;
  }
}

TEST(Seccomp, BuildsEveryRoleAndOffIsEmpty) {
  for (SeccompRole role : {SeccompRole::kProcess, SeccompRole::kVcpu}) {
    auto program = SeccompProgram::Build(role, SeccompMode::kKill);
    ASSERT_TRUE(program.ok()) << program.status();
    EXPECT_GT(program->instructions(), SeccompAllowList(role).size());
    EXPECT_TRUE(SeccompProgram::Build(role, SeccompMode::kOff)->empty());
  }
}

TEST(Seccomp, ViolationLineNamesTheCall) {
  ASSERT_TRUE(InstallSeccompReporter().ok());
  const std::string line = SeccompViolationLine(4242, "vcpu 3", SYS_getppid);
  EXPECT_NE(line.find("thread 4242 (vcpu 3)"), std::string::npos) << line;
  EXPECT_NE(line.find("forbidden system call: getppid (110)"), std::string::npos) << line;
}

void ApplyOrExit(SeccompRole role, SeccompMode mode, bool all_threads) {
  auto program = SeccompProgram::Build(role, mode);
  if (!program.ok() || !program->Apply(all_threads).ok()) std::_Exit(3);
}

TEST(SeccompDeathTest, ForbiddenCallOnAVcpuThreadKillsWithItsName) {
  EXPECT_EXIT(
      {
        if (!InstallSeccompReporter().ok()) std::_Exit(3);
        ApplyOrExit(SeccompRole::kVcpu, SeccompMode::kKill, /*all_threads=*/false);
        (void)getpid();  // allowed
        syscall(SYS_getppid);
        std::_Exit(0);
      },
      ::testing::KilledBySignal(SIGSYS), "forbidden system call: getppid");
}

TEST(SeccompDeathTest, LogModeLetsTheCallThrough) {
  EXPECT_EXIT(
      {
        ApplyOrExit(SeccompRole::kVcpu, SeccompMode::kLog, /*all_threads=*/false);
        std::_Exit(syscall(SYS_getppid) > 0 ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "");
}

// TSYNC: a thread that exists before the process filter is bound by it too. Exits 0 when every
// thread shows "Seccomp: 2".
void FilterProcessWithASecondThread() {
  absl::Notification release;
  std::thread other([&] { release.WaitForNotification(); });
  ApplyOrExit(SeccompRole::kProcess, SeccompMode::kKill, /*all_threads=*/true);
  auto states = SeccompStateOfThreads(getpid());
  const bool all = states.ok() && states->size() >= 2 &&
                   std::all_of(states->begin(), states->end(), [](int s) { return s == 2; });
  release.Notify();
  other.join();
  std::_Exit(all ? 0 : 5);
}

TEST(SeccompDeathTest, ProcessFilterReachesEveryThread) {
  EXPECT_EXIT(FilterProcessWithASecondThread(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace pcivmm::base
