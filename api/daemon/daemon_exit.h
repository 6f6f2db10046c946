// What ends the daemon (DaemonExit), the thread that turns signals into it (SignalWatcher),
// and the exit status a signal gives (SignalStop).
#ifndef PCIVMM_API_DAEMON_DAEMON_EXIT_H_
#define PCIVMM_API_DAEMON_DAEMON_EXIT_H_

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "vmm/kvm/run_control.h"

namespace pcivmm::api {

// What ends the daemon: the VM stopping (without the API, or with --exit-with-guest), a
// ShutdownVm call, or SIGINT, SIGTERM, SIGHUP or SIGQUIT.
class DaemonExit {
 public:
  void VmStopped() { Set(&vm_stopped_); }
  void ShutdownRequested() { Set(&shutdown_); }
  void Signalled(int sig) {
    {
      absl::MutexLock lock(&mu_);
      if (signal_ == 0) signal_ = sig;
    }
    ShutdownRequested();
  }
  // The first signal that ended the daemon; 0 if none did.
  int signal() const {
    absl::MutexLock lock(&mu_);
    return signal_;
  }
  // Returns true when the wait ended by a shutdown request.
  bool Wait(bool until_vm_stops) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(until_vm_stops ? &either_ : &shutdown_));
    return shutdown_;
  }

 private:
  void Set(bool* flag) {
    absl::MutexLock lock(&mu_);
    *flag = true;
    either_ = vm_stopped_ || shutdown_;
  }
  mutable absl::Mutex mu_;
  int signal_ = 0;
  bool vm_stopped_ = false;
  bool shutdown_ = false;
  bool either_ = false;
};

// SIGINT, SIGTERM, SIGHUP and SIGQUIT, blocked in every thread, are taken by one sigwait
// thread.
class SignalWatcher {
 public:
  explicit SignalWatcher(DaemonExit* exit) {
    thread_ = std::thread([this, exit] {
      sigset_t set = Signals();
      int sig = 0;
      while (sigwait(&set, &sig) == 0 && !done_.load()) exit->Signalled(sig);
    });
  }
  ~SignalWatcher() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGINT);  // wakes sigwait; done_ says why
    thread_.join();
  }
  static sigset_t Signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    return set;
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// SIGINT 130, SIGTERM 143, SIGHUP 129, SIGQUIT 131: the shell's convention for a process a
// signal ended.
inline kvm::StopReason SignalStop(int sig) {
  return {128 + sig, absl::StrFormat("stopped by SIG%s", sigabbrev_np(sig))};
}

}  // namespace pcivmm::api

#endif  // PCIVMM_API_DAEMON_DAEMON_EXIT_H_
