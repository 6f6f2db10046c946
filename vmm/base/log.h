// Minimal logging to stderr (absl 20220623 has no absl/log).
#ifndef PCIVMM_VMM_BASE_LOG_H_
#define PCIVMM_VMM_BASE_LOG_H_

#include <atomic>
#include <cstdint>
#include <string_view>

#include "absl/strings/str_format.h"

namespace pcivmm::base {

void LogLine(std::string_view severity, std::string_view message);

// A per-call-site budget of log lines: at most kBurst lines per kWindowNs; lines over the
// budget are counted and the count is reported with the next line that gets through.
// Lock-free; safe from any vCPU thread. Guest-triggered warnings must go through this.
class RateLimit {
 public:
  static constexpr uint64_t kWindowNs = 1'000'000'000;
  static constexpr uint32_t kBurst = 10;
  // Returns true if a line may be printed now; *suppressed receives the number dropped since.
  bool Allow(uint64_t* suppressed);

 private:
  std::atomic<uint64_t> window_start_ns_{0};
  std::atomic<uint32_t> in_window_{0};
  std::atomic<uint64_t> suppressed_{0};
};

template <typename... Args>
void LogRateLimited(RateLimit& limit, const absl::FormatSpec<Args...>& format,
                    const Args&... args) {
  uint64_t suppressed = 0;
  if (!limit.Allow(&suppressed)) return;
  std::string line = absl::StrFormat(format, args...);
  if (suppressed > 0) absl::StrAppendFormat(&line, " (%d similar suppressed)", suppressed);
  LogLine("W", line);
}

}  // namespace pcivmm::base

#define PCIVMM_LOG_GUEST(...)                                   \
  do {                                                          \
    static ::pcivmm::base::RateLimit _pcivmm_limit;             \
    ::pcivmm::base::LogRateLimited(_pcivmm_limit, __VA_ARGS__); \
  } while (0)

#endif  // PCIVMM_VMM_BASE_LOG_H_
