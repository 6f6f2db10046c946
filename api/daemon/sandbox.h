// The daemon's seccomp sandbox (vmm/base/seccomp.h), in the order start-up needs it:
// Prepare() before any set-up (a bad --seccomp is a usage error; libseccomp compiles both
// programs while every system call is still allowed), Confine() once the VM and its devices
// exist and before the vCPU threads start. The API server starts after it, beside the guest's
// boot: its threads inherit the process list.
#ifndef PCIVMM_API_DAEMON_SANDBOX_H_
#define PCIVMM_API_DAEMON_SANDBOX_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "vmm/base/seccomp.h"
#include "vmm/platform/machine.h"

namespace pcivmm::api {

class Sandbox {
 public:
  static absl::StatusOr<Sandbox> Prepare(absl::string_view mode);

  // Hands the vCPU program to the machine (its threads install it as they start), adds the
  // test probe if asked, then binds every thread that exists now or later to the process list
  // (NO_NEW_PRIVS, TSYNC). Call after the VM and its devices exist, before the vCPUs start.
  absl::Status Confine(platform::Machine& machine, bool test_probe) const;

 private:
  Sandbox(base::SeccompProgram process, std::shared_ptr<const base::SeccompProgram> vcpu)
      : process_(std::move(process)), vcpu_(std::move(vcpu)) {}
  base::SeccompProgram process_;
  std::shared_ptr<const base::SeccompProgram> vcpu_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_DAEMON_SANDBOX_H_
