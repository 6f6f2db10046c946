#include "vmm/kvm/vcpu.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "absl/strings/str_format.h"

namespace pcivmm::kvm {
namespace {

constexpr int kKickSignal = SIGUSR2;

void NoopHandler(int /*signal*/) {}

void InstallKickHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = NoopHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kKickSignal, &sa, nullptr);
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vcpu>> Vcpu::Create(const Kvm& kvm, const Vm& vm, int index) {
  InstallKickHandlerOnce();
  base::UniqueFd fd(::ioctl(vm.fd(), KVM_CREATE_VCPU, index));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrFormat("KVM_CREATE_VCPU %d", index));
  const auto size = static_cast<size_t>(kvm.vcpu_mmap_size());
  // The kvm_run page is shared with the kernel for the fd's lifetime; unmapped in ~Vcpu.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap kvm_run");
  return std::unique_ptr<Vcpu>(new Vcpu(std::move(fd), index, static_cast<kvm_run*>(p), size));
}

Vcpu::~Vcpu() { ::munmap(run_, run_size_); }

void Vcpu::SetInRun(bool in_run) {
  absl::MutexLock lock(&kick_mu_);
  in_run_ = in_run;
  thread_ = pthread_self();
}

StopReason Vcpu::Run(ExitDispatcher& dispatcher, RunControl& control) {
  SetInRun(true);
  StopReason reason{0, absl::StrFormat("vcpu %d stopped", index_)};
  while (!control.stop_requested()) {
    if (control.pause_requested()) {
      control.Park();
      continue;
    }
    if (::ioctl(fd_.get(), KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        // A kick (stop or pause): clear immediate_exit *before* the loop reads the flags. If
        // the exchange sees the kicker's 1, the flag it set first is visible; if not, the 1
        // lands after and the next KVM_RUN returns at once.
        std::atomic_ref<uint8_t>(run_->immediate_exit).exchange(0, std::memory_order_acq_rel);
        continue;
      }
      reason = {kExitStatusVmmError,
                absl::StrFormat("vcpu %d: KVM_RUN failed: %s", index_, std::strerror(errno))};
      break;
    }
    if (auto stop = dispatcher.Dispatch(run_)) {
      reason = *std::move(stop);
      break;
    }
  }
  SetInRun(false);
  return reason;
}

void Vcpu::Kick() {
  // immediate_exit is read by the kernel on KVM_RUN entry; set it before the signal.
  std::atomic_ref<uint8_t>(run_->immediate_exit).store(1, std::memory_order_release);
  absl::MutexLock lock(&kick_mu_);
  if (in_run_) pthread_kill(thread_, kKickSignal);
}

}  // namespace pcivmm::kvm
