#ifndef PCIVMM_VMM_KVM_VCPU_H_
#define PCIVMM_VMM_KVM_VCPU_H_

#include <linux/kvm.h>
#include <pthread.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "vmm/base/unique_fd.h"
#include "vmm/kvm/exit_dispatcher.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/run_control.h"

namespace pcivmm::kvm {

// A vCPU fd and its kvm_run page.
//
// Threads: Run() is called on the vCPU's own thread; Kick() from any thread. Stopping uses
// both of KVM's mechanisms: `immediate_exit` makes a KVM_RUN that has not started yet return
// EINTR at once, and a signal (SIGUSR2, handler installed without SA_RESTART) interrupts one
// that is running. kick_mu_ makes sure the signal only goes to a thread inside Run().
class Vcpu {
 public:
  static absl::StatusOr<std::unique_ptr<Vcpu>> Create(const Kvm& kvm, const Vm& vm, int index);
  ~Vcpu();
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;

  // Runs the guest until the dispatcher or `control` stops it; parks while it is paused.
  StopReason Run(ExitDispatcher& dispatcher, RunControl& control);
  void Kick();

  int fd() const { return fd_.get(); }
  int index() const { return index_; }
  kvm_run* run() const { return run_; }
  size_t run_size() const { return run_size_; }

 private:
  Vcpu(base::UniqueFd fd, int index, kvm_run* run, size_t run_size)
      : fd_(std::move(fd)), index_(index), run_(run), run_size_(run_size) {}
  void SetInRun(bool in_run);

  base::UniqueFd fd_;
  const int index_;
  kvm_run* const run_;
  const size_t run_size_;
  absl::Mutex kick_mu_;
  bool in_run_ ABSL_GUARDED_BY(kick_mu_) = false;
  pthread_t thread_ ABSL_GUARDED_BY(kick_mu_){};
};

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_VCPU_H_
