#include "vmm/run_control.h"

namespace pcivmm {

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

std::optional<StopReason> RunControl::reason() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

}  // namespace pcivmm
