#ifndef PCIVMM_VMM_RUN_CONTROL_H_
#define PCIVMM_VMM_RUN_CONTROL_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace pcivmm {

// Why a VM stopped, and the status the VMM process should exit with.
struct StopReason {
  int exit_code = 0;
  std::string detail;
};

// Shared by the vCPU threads and whoever controls the VM. The first stop request wins; it
// kicks every vCPU out of KVM_RUN (immediate_exit plus a signal, see Vcpu::Kick).
class RunControl {
 public:
  // `kick_all` is called once, on the first request, from the requesting thread.
  void SetKicker(std::function<void()> kick_all);
  void RequestStop(StopReason reason);
  bool stop_requested() const { return stop_.load(std::memory_order_acquire); }
  std::optional<StopReason> reason() const;

 private:
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  std::optional<StopReason> reason_ ABSL_GUARDED_BY(mu_);
  std::function<void()> kick_all_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm

#endif  // PCIVMM_VMM_RUN_CONTROL_H_
