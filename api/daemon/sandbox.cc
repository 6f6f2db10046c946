#include "api/daemon/sandbox.h"

#include <sys/syscall.h>
#include <unistd.h>

#include "guest-images/include/pcivmm_guest_abi.h"
#include "mmio/io_device.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
namespace {

// --seccomp-test-probe: a write makes a system call the vCPU filter forbids, so a test can
// prove that a device model, running on a vCPU thread, is confined.
class SeccompProbe : public mmio::IoDevice {
 public:
  std::string_view Name() const override { return "seccomp-probe"; }
  void Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) override {
    for (auto& b : data) b = 0;
  }
  void Write(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/, int /*vcpu*/) override {
    syscall(SYS_getppid);  // not in the vCPU list: kill mode ends the process here
  }
};

}  // namespace

absl::StatusOr<Sandbox> Sandbox::Prepare(absl::string_view mode_name) {
  PCIVMM_ASSIGN_OR_RETURN(base::SeccompMode mode, base::ParseSeccompMode(mode_name));
  if (mode == base::SeccompMode::kKill) PCIVMM_RETURN_IF_ERROR(base::InstallSeccompReporter());
  PCIVMM_ASSIGN_OR_RETURN(base::SeccompProgram process,
                          base::SeccompProgram::Build(base::SeccompRole::kProcess, mode));
  PCIVMM_ASSIGN_OR_RETURN(base::SeccompProgram vcpu,
                          base::SeccompProgram::Build(base::SeccompRole::kVcpu, mode));
  std::shared_ptr<const base::SeccompProgram> vcpu_program;
  if (!vcpu.empty()) vcpu_program = std::make_shared<base::SeccompProgram>(std::move(vcpu));
  return Sandbox(std::move(process), std::move(vcpu_program));
}

absl::Status Sandbox::Confine(platform::Machine& machine, bool test_probe) const {
  if (test_probe) {
    PCIVMM_RETURN_IF_ERROR(
        machine.pio()
            .Register(PCIVMM_TEST_SECCOMP_PORT, 1, std::make_shared<SeccompProbe>())
            .status());
  }
  machine.SetVcpuSeccomp(vcpu_);
  return process_.Apply(/*all_threads=*/true);
}

}  // namespace pcivmm::api
