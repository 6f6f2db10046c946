// The boot-done marker (in the manner of Firecracker's boot timer): the guest's init writes
// layout::kBootMarkerValue to layout::kBootMarkerPort; the VMM records the time since the VM
// started and tells whoever listens (the exit report, the API's event feed).
#ifndef PCIVMM_VMM_DEVICES_BOOT_MARKER_H_
#define PCIVMM_VMM_DEVICES_BOOT_MARKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "mmio/io_device.h"

namespace pcivmm::devices {

class BootMarker : public mmio::IoDevice {
 public:
  // Called on the writing vCPU's thread with the nanoseconds since `start_ns` (a
  // CLOCK_MONOTONIC time, see MonotonicNowNs()); must not block.
  using Listener = std::function<void(uint64_t boot_ns, int vcpu)>;

  explicit BootMarker(uint64_t start_ns, Listener listener = nullptr)
      : start_ns_(start_ns), listener_(std::move(listener)) {}
  // Replaces the listener; only before the vCPUs run (vCPU threads read it without a lock).
  void SetListener(Listener listener) { listener_ = std::move(listener); }
  std::string_view Name() const override { return "boot-marker"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  // Nanoseconds from VM start to the first marker write, if it happened.
  std::optional<uint64_t> boot_ns() const;
  uint64_t marks() const { return marks_.load(std::memory_order_relaxed); }
  uint64_t bad_writes() const { return bad_writes_.load(std::memory_order_relaxed); }

 private:
  static constexpr uint64_t kNotYet = ~0ull;
  const uint64_t start_ns_;
  Listener listener_;
  std::atomic<uint64_t> first_ns_{kNotYet};
  std::atomic<uint64_t> marks_{0};
  std::atomic<uint64_t> bad_writes_{0};
};

uint64_t MonotonicNowNs();

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_BOOT_MARKER_H_
