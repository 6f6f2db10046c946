#ifndef PCIVMM_VMM_KVM_RUN_CONTROL_H_
#define PCIVMM_VMM_KVM_RUN_CONTROL_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace pcivmm::kvm {

// Why a VM stopped, and the status the VMM process should exit with.
struct StopReason {
  int exit_code = 0;
  std::string detail;
};

// Shared by the vCPU threads and whoever controls the VM. The first stop request wins; it
// kicks every vCPU out of KVM_RUN (immediate_exit plus a signal, see Vcpu::Kick).
//
// Pause: RequestPause() sets a flag and kicks; each vCPU, before its next KVM_RUN, parks in
// Park() until Resume() or a stop. A vCPU parks only between exits, so once every running
// vCPU is parked no counter moves. RequestPause never blocks (a vCPU thread may call it);
// WaitParked blocks until the pause took effect.
class RunControl {
 public:
  // `kick_all` is called from the requesting thread on the first stop and on every pause.
  void SetKicker(std::function<void()> kick_all);
  void RequestStop(StopReason reason);
  bool stop_requested() const { return stop_.load(std::memory_order_acquire); }
  std::optional<StopReason> reason() const;

  void RequestPause();
  void Resume();
  bool pause_requested() const { return pause_.load(std::memory_order_acquire); }
  // A pause was requested and every running vCPU is parked.
  bool paused() const;
  // True once every vCPU still running is parked; false on timeout or when the VM stopped.
  bool WaitParked(absl::Duration timeout);
  // Called when the last running vCPU parks, on that vCPU's thread with the control's lock
  // held: it must not block or call back into RunControl.
  void SetParkedListener(std::function<void()> on_parked);

  // The vCPU side: `vcpus` threads are about to run; each calls Park() when it sees a pause
  // request and LeaveRun() when its loop ends.
  void BeginRun(int vcpus);
  void Park();
  void LeaveRun();

 private:
  bool AllParked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return active_ > 0 && parked_ == active_;
  }
  bool ParkedOrStopped() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return AllParked() || reason_.has_value();
  }
  bool Released() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !pause_.load(std::memory_order_relaxed) || reason_.has_value();
  }
  void Kick();

  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
  mutable absl::Mutex mu_;
  std::optional<StopReason> reason_ ABSL_GUARDED_BY(mu_);
  std::function<void()> kick_all_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_parked_ ABSL_GUARDED_BY(mu_);
  int active_ ABSL_GUARDED_BY(mu_) = 0;  // vCPUs inside their run loop
  int parked_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_RUN_CONTROL_H_
