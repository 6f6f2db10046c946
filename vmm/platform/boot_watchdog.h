// The boot watchdog (pcivmm --boot-timeout): a guest that has not written the boot marker
// in time is reported instead of hanging silently. The report holds the guest's last console
// line and, per vCPU, its instruction pointer, the reason of its latest exit and its exit
// count; pcivmm prints it and exits with kExitStatusBootTimeout, the daemon publishes it as
// an event and lets the VM run on.
#ifndef PCIVMM_VMM_PLATFORM_BOOT_WATCHDOG_H_
#define PCIVMM_VMM_PLATFORM_BOOT_WATCHDOG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "vmm/kvm/exit_stats.h"
#include "vmm/platform/machine.h"

namespace pcivmm::platform {

// One vCPU when the boot timeout fired.
struct VcpuBootState {
  int vcpu = 0;
  std::optional<uint64_t> rip;                       // unset: the vCPU did not park in time
  uint32_t last_exit = kvm::VcpuExitStats::kNoExit;  // KVM_EXIT_*; kNoExit: no exit yet
  uint64_t exits = 0;
};

struct BootTimeoutReport {
  absl::Duration timeout;
  std::string last_console_line;  // empty: the guest printed nothing
  std::vector<VcpuBootState> vcpus;
};

// --boot-timeout's value: a duration such as "30s" or "2m"; "" and "0" turn the watchdog off
// (zero). InvalidArgument, naming the flag, for anything else or a negative duration.
absl::StatusOr<absl::Duration> ParseBootTimeout(std::string_view text);

// The last line of `console` that is not blank, without its line end and trailing blanks.
// A '\r' ends a line too (a terminal shows what follows it). The guest controls these bytes:
// anything but printable ASCII becomes '?', and a line longer than kMaxConsoleLine is cut.
inline constexpr size_t kMaxConsoleLine = 200;
std::string LastConsoleLine(std::string_view console);

// "boot timeout after 1s: no boot marker": the report's first line and the stop's detail.
std::string BootTimeoutHeadline(absl::Duration timeout);

// The report as lines for stderr, each starting with `prefix`:
//   pcivmm: boot timeout after 1s: no boot marker
//   pcivmm:   last console line: "spin: vcpu 1 spins without the boot marker"
//   pcivmm:   vcpu 0: rip 0x100046, last exit IO, 2 exits
//   pcivmm:   vcpu 1: rip unknown (did not park), last exit none, 0 exits
std::string FormatBootTimeoutReport(const BootTimeoutReport& report, std::string_view prefix);

// Asks every vCPU to park, waits up to `park_timeout` for them, and reads each one's state:
// its RIP only if all parked (KVM_GET_REGS on a vCPU inside KVM_RUN would wait for it). The
// pause stays requested: the caller resumes or stops the machine.
BootTimeoutReport CollectBootTimeoutReport(Machine& machine, absl::Duration timeout,
                                           std::string_view console, absl::Duration park_timeout);

// Calls `on_timeout` once, on the watchdog's own thread, if Cancel() has not been called
// within `timeout` of Arm(). The thread sleeps on a condition with a deadline: Cancel() or
// Stop() ends it at once. on_timeout must not call Stop().
class BootWatchdog {
 public:
  BootWatchdog(absl::Duration timeout, std::function<void()> on_timeout)
      : timeout_(timeout), on_timeout_(std::move(on_timeout)) {}
  ~BootWatchdog() { Stop(); }
  BootWatchdog(const BootWatchdog&) = delete;
  BootWatchdog& operator=(const BootWatchdog&) = delete;

  // Starts the timer; only the first call counts, and none after Cancel().
  void Arm();
  // The boot marker arrived or the VM stopped. Any thread (a vCPU's too): never waits.
  void Cancel();
  // Cancel() and join the thread (waits for an on_timeout that is running).
  void Stop();

 private:
  void Wait();

  const absl::Duration timeout_;
  const std::function<void()> on_timeout_;
  absl::Mutex mu_;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_BOOT_WATCHDOG_H_
