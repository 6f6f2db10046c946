#include "vmm/base/seccomp.h"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/base/internal/sysinfo.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/base/proc_fields.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::base {
namespace {

constexpr int kMaxSyscall = 512;
// Names for the SIGSYS handler, filled before any filter exists (the handler may not allocate).
std::array<std::array<char, 32>, kMaxSyscall> g_names{};
// The thread's name as Apply() found it (a vCPU thread's filter has no prctl for the handler).
thread_local char t_thread_name[16];

using Ctx = std::unique_ptr<void, decltype(&seccomp_release)>;

// clone only for threads (fork and new namespaces refused); clone3 says ENOSYS, so glibc falls
// back to clone, whose flags a filter can read (clone3 keeps them in memory it cannot).
absl::Status AddRule(void* ctx, const char* name) {
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return absl::InternalError(absl::StrCat("seccomp: no syscall ", name));
  int rc = 0;
  if (std::strcmp(name, "clone") == 0) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  } else if (std::strcmp(name, "clone3") == 0) {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
  } else if (std::strcmp(name, "prctl") == 0) {
    for (const int option : {PR_SET_NO_NEW_PRIVS, PR_SET_NAME, PR_GET_NAME}) {
      const scmp_arg_cmp arg0{0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(option), 0};
      rc = rc != 0 ? rc : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, arg0);
    }
  } else {
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  }
  if (rc != 0) return absl::ErrnoToStatus(-rc, absl::StrCat("seccomp: rule for ", name));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<sock_filter>> ExportBpf(void* ctx) {
  UniqueFd fd(memfd_create("pcivmm-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "seccomp: memfd_create");
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc != 0) {
    return absl::ErrnoToStatus(-rc, "seccomp: export");
  }
  const off_t size = lseek(fd.get(), 0, SEEK_END);
  std::vector<sock_filter> code(static_cast<size_t>(size) / sizeof(sock_filter));
  const size_t bytes = code.size() * sizeof(sock_filter);
  if (pread(fd.get(), code.data(), bytes, 0) != static_cast<ssize_t>(bytes)) {
    return absl::ErrnoToStatus(errno, "seccomp: read back");
  }
  return code;
}

// Async-signal-safe: digits into the buffer, no allocation.
char* PutNumber(char* p, int64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && n < 23);
  while (n > 0) *p++ = digits[--n];
  return p;
}

char* PutText(char* p, const char* s) {
  while (*s != '\0') *p++ = *s++;
  return p;
}

size_t FormatViolation(char* buf, int64_t tid, const char* thread, int nr) {
  char* p = PutText(buf, "pcivmm: seccomp: thread ");
  p = PutNumber(p, tid);
  p = PutText(PutText(PutText(p, " ("), thread), ")");
  p = PutText(p, " made a forbidden system call: ");
  const bool known = nr >= 0 && nr < kMaxSyscall && g_names[static_cast<size_t>(nr)][0] != '\0';
  p = PutText(p, known ? g_names[static_cast<size_t>(nr)].data() : "?");
  p = PutText(p, " (");
  p = PutNumber(p, nr);
  p = PutText(p, "); killed by SIGSYS (--seccomp=log allows and logs instead)\n");
  return static_cast<size_t>(p - buf);
}

// SECCOMP_RET_TRAP: name the call, then hand SIGSYS back to its default action. The tgkill
// stays pending while the handler runs (SIGSYS is blocked in it) and kills on return.
void OnSigsys(int /*sig*/, siginfo_t* info, void* /*ctx*/) {
  char buf[256];
  const int64_t tid = syscall(SYS_gettid);
  if (t_thread_name[0] == '\0') prctl(PR_GET_NAME, t_thread_name);  // in the process list
  const size_t n = FormatViolation(buf, tid, t_thread_name, info->si_syscall);
  const ssize_t written = write(STDERR_FILENO, buf, n);  // a dying thread: nothing to retry
  (void)written;
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSYS, &dfl, nullptr);
  syscall(SYS_tgkill, getpid(), tid, SIGSYS);
}

}  // namespace

absl::StatusOr<SeccompMode> ParseSeccompMode(absl::string_view text) {
  if (text == "off") return SeccompMode::kOff;
  if (text == "kill") return SeccompMode::kKill;
  if (text == "log") return SeccompMode::kLog;
  return absl::InvalidArgumentError(
      absl::StrCat("--seccomp: '", text, "' is not one of off, kill, log"));
}

absl::string_view SeccompRoleName(SeccompRole role) {
  return role == SeccompRole::kVcpu ? "vcpu" : "process";
}

absl::StatusOr<SeccompProgram> SeccompProgram::Build(SeccompRole role, SeccompMode mode) {
  if (mode == SeccompMode::kOff) return SeccompProgram(role, {});
  // absl reads /sys/devices/system/cpu/online and the CPU frequency once, lazily (a contended
  // Mutex, a first timed wait); read them now, while a vCPU thread may still open files.
  (void)absl::base_internal::NumCPUs();
  (void)absl::base_internal::NominalCPUFrequency();
  Ctx ctx(seccomp_init(mode == SeccompMode::kKill ? SCMP_ACT_TRAP : SCMP_ACT_LOG),
          &seccomp_release);
  if (ctx == nullptr) return absl::InternalError("seccomp: seccomp_init failed");
  for (const char* name : SeccompAllowList(role)) {
    if (absl::Status st = AddRule(ctx.get(), name); !st.ok()) return st;
  }
  auto code = ExportBpf(ctx.get());
  if (!code.ok()) return code.status();
  return SeccompProgram(role, *std::move(code));
}

absl::Status SeccompProgram::Apply(bool all_threads) const {
  if (code_.empty()) return absl::OkStatus();
  prctl(PR_GET_NAME, t_thread_name);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return absl::ErrnoToStatus(errno, "seccomp: PR_SET_NO_NEW_PRIVS");
  }
  sock_fprog prog{static_cast<uint16_t>(code_.size()), const_cast<sock_filter*>(code_.data())};
  const int64_t rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                             all_threads ? SECCOMP_FILTER_FLAG_TSYNC : 0, &prog);
  if (rc < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("seccomp: ", SeccompRoleName(role_), " filter"));
  }
  if (rc > 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "seccomp: thread %d could not take the %s filter (TSYNC)", rc, SeccompRoleName(role_)));
  }
  return absl::OkStatus();
}

absl::Status InstallSeccompReporter() {
  for (int nr = 0; nr < kMaxSyscall; ++nr) {
    char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    if (name == nullptr) continue;
    std::strncpy(g_names[static_cast<size_t>(nr)].data(), name, g_names[0].size() - 1);
    std::free(name);
  }
  struct sigaction sa = {};
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  if (sigaction(SIGSYS, &sa, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, "seccomp: sigaction(SIGSYS)");
  }
  return absl::OkStatus();
}

std::string SeccompViolationLine(int64_t tid, const char* thread, int nr) {
  char buf[256];
  return {buf, FormatViolation(buf, tid, thread, nr)};
}

absl::StatusOr<std::vector<int>> SeccompStateOfThreads(int pid) {
  std::vector<int> states;
  std::error_code ec;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  for (const auto& task : std::filesystem::directory_iterator(dir, ec)) {
    absl::StatusOr<uint64_t> state = ReadProcNumber(task.path().string() + "/status", "Seccomp:");
    if (!state.ok()) return state.status();
    states.push_back(static_cast<int>(*state));
  }
  if (ec) return absl::NotFoundError(absl::StrCat(dir, ": ", ec.message()));
  return states;
}

}  // namespace pcivmm::base
