#include "vmm/base/boot_profile.h"

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"

namespace pcivmm::base {
namespace {

int64_t NowNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// proc(5), /proc/PID/stat field 22: starttime, "the time the process started after system
// boot ... expressed in clock ticks". Field 2 (comm) is in parentheses and may hold spaces,
// so the fields are counted after its closing one.
std::optional<int64_t> ProcessStartBoottimeNs() {
  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i < 22) continue;
    const long ticks = sysconf(_SC_CLK_TCK);  // NOLINT(google-runtime-int): sysconf's type
    if (ticks <= 0) return std::nullopt;
    return static_cast<int64_t>(std::stoull(field) *
                                (1'000'000'000ull / static_cast<uint64_t>(ticks)));
  }
  return std::nullopt;
}

}  // namespace

absl::string_view BootPhaseName(BootPhase phase) {
  static constexpr absl::string_view kNames[kBootPhaseCount] = {"main",
                                                                "flags_parsed",
                                                                "vm_created",
                                                                "ram_mapped",
                                                                "vcpus_created",
                                                                "devices_attached",
                                                                "images_loaded",
                                                                "firmware_built",
                                                                "api_ready",
                                                                "first_kvm_run",
                                                                "first_console_byte",
                                                                "first_config_access",
                                                                "last_config_access",
                                                                "boot_marker",
                                                                "exit"};
  return kNames[static_cast<int>(phase)];
}

BootProfile::BootProfile() {
  for (auto& a : at_) a.store(kUnset, std::memory_order_relaxed);
  const int64_t mono = NowNs(CLOCK_MONOTONIC);
  start_ns_ = mono;
  if (const std::optional<int64_t> boot = ProcessStartBoottimeNs()) {
    // CLOCK_BOOTTIME runs ahead of CLOCK_MONOTONIC by the time the host spent suspended.
    start_ns_ = *boot - (NowNs(CLOCK_BOOTTIME) - mono);
    start_from_kernel_ = true;
  }
}

void BootProfile::Mark(BootPhase phase) {
  std::atomic<int64_t>& at = at_[static_cast<size_t>(phase)];
  if (at.load(std::memory_order_relaxed) != kUnset) return;  // the common case: no clock read
  int64_t unset = kUnset;
  at.compare_exchange_strong(unset, NowNs(CLOCK_MONOTONIC) - start_ns_, std::memory_order_relaxed);
}

void BootProfile::MarkSpan(BootPhase first, BootPhase latest) {
  if (at_[static_cast<size_t>(BootPhase::kBootMarker)].load(std::memory_order_relaxed) != kUnset) {
    return;
  }
  const int64_t now = NowNs(CLOCK_MONOTONIC) - start_ns_;
  int64_t unset = kUnset;
  at_[static_cast<size_t>(first)].compare_exchange_strong(unset, now, std::memory_order_relaxed);
  at_[static_cast<size_t>(latest)].store(now, std::memory_order_relaxed);
}

std::optional<int64_t> BootProfile::ns(BootPhase phase) const {
  const int64_t v = at_[static_cast<size_t>(phase)].load(std::memory_order_relaxed);
  if (v == kUnset) return std::nullopt;
  return v;
}

std::optional<int64_t> BootProfile::guest_uptime_ns() const {
  const int64_t v = guest_uptime_ns_.load(std::memory_order_relaxed);
  if (v == kUnset) return std::nullopt;
  return v;
}

std::string BootProfile::Format() const {
  std::string out =
      absl::StrFormat("boot profile (ms from process start%s):\n",
                      start_from_kernel_ ? "" : ", here: from the profile's creation");
  for (int i = 0; i < kBootPhaseCount; ++i) {
    const auto phase = static_cast<BootPhase>(i);
    if (const std::optional<int64_t> t = ns(phase)) {
      absl::StrAppendFormat(&out, "  %-20s %10.3f\n", BootPhaseName(phase),
                            static_cast<double>(*t) / 1e6);
    }
  }
  if (const std::optional<int64_t> up = guest_uptime_ns()) {
    absl::StrAppendFormat(&out, "  %-20s %10.3f\n", "guest_uptime", static_cast<double>(*up) / 1e6);
  }
  return out;
}

}  // namespace pcivmm::base
