// seccomp allow-lists per thread role, compiled once with libseccomp and installed as raw BPF.
//
// seccomp(2): "If the filter ... returns SECCOMP_RET_TRAP, the kernel sends a thread-directed
// SIGSYS signal to the triggering thread"; "SECCOMP_FILTER_FLAG_TSYNC: When adding a new filter,
// synchronize all other threads of the calling process to the same seccomp filter tree."
// Filters stack: a thread that adds its own filter on top of the process's is bound by both, so
// a vCPU thread gets the process's list narrowed to its own.
#ifndef PCIVMM_VMM_BASE_SECCOMP_H_
#define PCIVMM_VMM_BASE_SECCOMP_H_

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace pcivmm::base {

enum class SeccompMode {
  kOff,
  kKill,  // a forbidden call: SIGSYS, a line naming the call, the process dies of SIGSYS
  kLog,   // a forbidden call is allowed and logged by the kernel (development)
};
absl::StatusOr<SeccompMode> ParseSeccompMode(absl::string_view text);  // off | kill | log

enum class SeccompRole {
  kProcess,  // main, API (gRPC) and helper threads: everything after set-up, no exec or fork
  kVcpu,     // a vCPU thread: KVM_RUN, device models, VFIO region access, console output
};
absl::string_view SeccompRoleName(SeccompRole role);
// The system calls a role may make (names as in <asm/unistd_64.h>); some are further restricted
// by argument (clone only with CLONE_THREAD; prctl only PR_SET_NO_NEW_PRIVS and PR_[GS]ET_NAME).
absl::Span<const char* const> SeccompAllowList(SeccompRole role);

class SeccompProgram {
 public:
  // Compiles the role's list. kOff gives an empty program whose Apply() does nothing.
  static absl::StatusOr<SeccompProgram> Build(SeccompRole role, SeccompMode mode);

  // Sets PR_SET_NO_NEW_PRIVS and installs the filter on the calling thread, or with
  // all_threads on every thread of the process (TSYNC). FAILED_PRECONDITION when a thread
  // could not be synchronised; the error names the thread.
  absl::Status Apply(bool all_threads) const;

  bool empty() const { return code_.empty(); }
  size_t instructions() const { return code_.size(); }

 private:
  SeccompProgram(SeccompRole role, std::vector<sock_filter> code)
      : role_(role), code_(std::move(code)) {}
  SeccompRole role_;
  std::vector<sock_filter> code_;
};

// Installs the SIGSYS handler of kill mode: it writes "pcivmm: seccomp: thread TID (NAME) made
// a forbidden system call: CALL (NR)" to stderr and lets SIGSYS end the process. Call once,
// before any filter.
absl::Status InstallSeccompReporter();

// The SIGSYS line (what the handler writes; for tests).
std::string SeccompViolationLine(int64_t tid, const char* thread, int nr);

// "Seccomp:" of /proc/self/task/TID/status for every thread (0 off, 2 filter): for tests.
absl::StatusOr<std::vector<int>> SeccompStateOfThreads(int pid);

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_SECCOMP_H_
