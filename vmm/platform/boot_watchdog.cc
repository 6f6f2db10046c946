#include "vmm/platform/boot_watchdog.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "absl/strings/str_format.h"

namespace pcivmm::platform {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// Printable ASCII only (the line goes to a terminal and into a proto string, which must be
// UTF-8), at most kMaxConsoleLine characters.
std::string Printable(std::string_view line) {
  const bool cut = line.size() > kMaxConsoleLine;
  if (cut) line = line.substr(0, kMaxConsoleLine - 3);
  std::string out(line);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7E) c = '?';
  }
  if (cut) out += "...";
  return out;
}

std::optional<uint64_t> ReadRip(int vcpu_fd) {
  kvm_regs regs{};
  if (::ioctl(vcpu_fd, KVM_GET_REGS, &regs) != 0) return std::nullopt;
  return regs.rip;
}

std::string FormatVcpu(const VcpuBootState& v) {
  const std::string rip = v.rip ? absl::StrFormat("0x%x", *v.rip) : "unknown (did not park)";
  const char* last =
      v.last_exit == kvm::VcpuExitStats::kNoExit ? "none" : kvm::ExitReasonName(v.last_exit);
  return absl::StrFormat("vcpu %d: rip %s, last exit %s, %d exits", v.vcpu, rip, last, v.exits);
}

}  // namespace

absl::StatusOr<absl::Duration> ParseBootTimeout(std::string_view text) {
  absl::Duration d;
  if (text.empty()) return absl::ZeroDuration();
  if (!absl::ParseDuration(std::string(text), &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--boot-timeout: '%s' is not a duration (e.g. 30s, 2m; 0 or empty: off)", text));
  }
  return d;
}

std::string LastConsoleLine(std::string_view console) {
  while (!console.empty()) {
    const size_t end = console.find_last_of("\r\n");
    const std::string_view line =
        TrimBlanks(end == std::string_view::npos ? console : console.substr(end + 1));
    if (!line.empty()) return Printable(line);
    if (end == std::string_view::npos) break;
    console = console.substr(0, end);
  }
  return "";
}

std::string BootTimeoutHeadline(absl::Duration timeout) {
  return absl::StrFormat("boot timeout after %s: no boot marker", absl::FormatDuration(timeout));
}

std::string FormatBootTimeoutReport(const BootTimeoutReport& report, std::string_view prefix) {
  std::string out = absl::StrFormat("%s%s\n", prefix, BootTimeoutHeadline(report.timeout));
  if (report.last_console_line.empty()) {
    absl::StrAppendFormat(&out, "%s  last console line: none (the guest printed nothing)\n",
                          prefix);
  } else {
    absl::StrAppendFormat(&out, "%s  last console line: \"%s\"\n", prefix,
                          report.last_console_line);
  }
  for (const VcpuBootState& v : report.vcpus) {
    absl::StrAppendFormat(&out, "%s  %s\n", prefix, FormatVcpu(v));
  }
  return out;
}

BootTimeoutReport CollectBootTimeoutReport(Machine& machine, absl::Duration timeout,
                                           std::string_view console, absl::Duration park_timeout) {
  machine.control().RequestPause();
  const bool parked = machine.control().WaitParked(park_timeout);
  BootTimeoutReport r{timeout, LastConsoleLine(console), {}};
  for (int i = 0; i < machine.vcpu_count(); ++i) {
    const kvm::VcpuExitStats& s = machine.stats().vcpu(i);
    VcpuBootState v{i, std::nullopt, s.last_exit_reason(), s.total_exits()};
    // Parked (or halted: out of its run loop), the vCPU is outside KVM_RUN.
    if (parked) v.rip = ReadRip(machine.vcpu(i).fd());
    r.vcpus.push_back(v);
  }
  return r;
}

void BootWatchdog::Arm() {
  absl::MutexLock lock(&mu_);
  if (armed_ || cancelled_) return;
  armed_ = true;
  thread_ = std::thread([this] { Wait(); });
}

void BootWatchdog::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

void BootWatchdog::Stop() {
  std::thread t;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void BootWatchdog::Wait() {
  {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&cancelled_), timeout_)) return;
  }
  on_timeout_();
}

}  // namespace pcivmm::platform
