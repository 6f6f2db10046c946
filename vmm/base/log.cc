#include "vmm/base/log.h"

#include <time.h>

#include <cstdio>

namespace pcivmm::base {
namespace {

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

void LogLine(std::string_view severity, std::string_view message) {
  std::fprintf(stderr, "pcivmm[%.*s]: %.*s\n", static_cast<int>(severity.size()), severity.data(),
               static_cast<int>(message.size()), message.data());
}

bool RateLimit::Allow(uint64_t* suppressed) {
  const uint64_t now = MonotonicNs();
  uint64_t start = window_start_ns_.load(std::memory_order_relaxed);
  if (now - start >= kWindowNs &&
      window_start_ns_.compare_exchange_strong(start, now, std::memory_order_relaxed)) {
    in_window_.store(0, std::memory_order_relaxed);
  }
  if (in_window_.fetch_add(1, std::memory_order_relaxed) >= kBurst) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace pcivmm::base
