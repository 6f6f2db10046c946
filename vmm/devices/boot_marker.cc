#include "vmm/devices/boot_marker.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "vmm/base/log.h"
#include "vmm/base/platform_layout.h"

namespace pcivmm::devices {
namespace {
constexpr uint64_t kUptimeOffset = 4;
}  // namespace

uint64_t MonotonicNowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Reads return the marker value, so a guest can detect the port.
void BootMarker::Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) {
  std::fill(data.begin(), data.end(), uint8_t{0});
  data[0] = base::layout::kBootMarkerValue;
}

void BootMarker::Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) {
  if (offset == kUptimeOffset && data.size() == 4) {
    uint32_t us = 0;
    std::memcpy(&us, data.data(), 4);  // x86: little-endian, as the guest wrote it
    if (profile_ != nullptr) profile_->SetGuestUptimeNs(int64_t{us} * 1000);
    return;
  }
  if (offset != 0 || data.size() != 1 || data[0] != base::layout::kBootMarkerValue) {
    bad_writes_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("boot marker: ignored write of %d bytes at +%d (want one byte %d)",
                     data.size(), offset, base::layout::kBootMarkerValue);
    return;
  }
  const uint64_t boot_ns = MonotonicNowNs() - start_ns_;
  marks_.fetch_add(1, std::memory_order_relaxed);
  uint64_t expected = kNotYet;
  first_ns_.compare_exchange_strong(expected, boot_ns, std::memory_order_relaxed);
  if (profile_ != nullptr) profile_->Mark(base::BootPhase::kBootMarker);
  if (listener_) listener_(boot_ns, vcpu);
}

std::optional<uint64_t> BootMarker::boot_ns() const {
  const uint64_t ns = first_ns_.load(std::memory_order_relaxed);
  if (ns == kNotYet) return std::nullopt;
  return ns;
}

}  // namespace pcivmm::devices
