#include "vmm/kvm/run_control.h"

namespace pcivmm::kvm {

void RunControl::SetKicker(std::function<void()> kick_all) {
  absl::MutexLock lock(&mu_);
  kick_all_ = std::move(kick_all);
}

void RunControl::RequestStop(StopReason reason) {
  std::function<void()> kick;
  {
    absl::MutexLock lock(&mu_);
    if (reason_) return;
    reason_ = std::move(reason);
    stop_.store(true, std::memory_order_release);
    kick = kick_all_;
  }
  if (kick) kick();
}

void RunControl::Kick() {
  std::function<void()> kick;
  {
    absl::MutexLock lock(&mu_);
    kick = kick_all_;
  }
  if (kick) kick();
}

void RunControl::RequestPause() {
  {
    absl::MutexLock lock(&mu_);
    if (reason_) return;
    pause_.store(true, std::memory_order_seq_cst);
  }
  Kick();
}

void RunControl::Resume() {
  absl::MutexLock lock(&mu_);
  pause_.store(false, std::memory_order_seq_cst);
}

bool RunControl::paused() const {
  absl::MutexLock lock(&mu_);
  return pause_.load(std::memory_order_relaxed) && AllParked();
}

bool RunControl::WaitParked(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &RunControl::ParkedOrStopped), timeout);
  return AllParked() && !reason_;
}

void RunControl::SetParkedListener(std::function<void()> on_parked) {
  absl::MutexLock lock(&mu_);
  on_parked_ = std::move(on_parked);
}

void RunControl::BeginRun(int vcpus) {
  absl::MutexLock lock(&mu_);
  active_ = vcpus;
}

// The listener runs under mu_, so it has run before WaitParked() returns.
void RunControl::Park() {
  absl::MutexLock lock(&mu_);
  ++parked_;
  if (AllParked() && on_parked_) on_parked_();
  mu_.Await(absl::Condition(this, &RunControl::Released));
  --parked_;
}

// A vCPU that halts while the others are parked completes the pause.
void RunControl::LeaveRun() {
  absl::MutexLock lock(&mu_);
  --active_;
  if (pause_.load(std::memory_order_relaxed) && AllParked() && on_parked_) on_parked_();
}

std::optional<StopReason> RunControl::reason() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

}  // namespace pcivmm::kvm
