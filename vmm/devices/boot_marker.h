// The boot-done marker (in the manner of Firecracker's boot timer): the guest's init writes
// layout::kBootMarkerValue to layout::kBootMarkerPort; the VMM records the time since the VM
// started and tells whoever listens (the exit report, the API's event feed). Before it, the
// guest may write its own uptime in microseconds as a dword at port + 4 (the guest ABI's
// PCIVMM_BOOT_UPTIME_PORT), which goes into the boot profile.
#ifndef PCIVMM_VMM_DEVICES_BOOT_MARKER_H_
#define PCIVMM_VMM_DEVICES_BOOT_MARKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>

#include "mmio/io_device.h"
#include "vmm/base/boot_profile.h"

namespace pcivmm::devices {

class BootMarker : public mmio::IoDevice {
 public:
  // Called on the writing vCPU's thread with the nanoseconds since `start_ns` (a
  // CLOCK_MONOTONIC time, see MonotonicNowNs()); must not block.
  using Listener = std::function<void(uint64_t boot_ns, int vcpu)>;

  static constexpr uint64_t kPortCount = 8;  // the marker at +0, the guest's uptime at +4

  // `profile` (may be null) gets the marker's phase and the guest's uptime.
  explicit BootMarker(uint64_t start_ns, Listener listener = nullptr,
                      base::BootProfile* profile = nullptr)
      : start_ns_(start_ns), listener_(std::move(listener)), profile_(profile) {}
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
  base::BootProfile* const profile_;
  std::atomic<uint64_t> first_ns_{kNotYet};
  std::atomic<uint64_t> marks_{0};
  std::atomic<uint64_t> bad_writes_{0};
};

uint64_t MonotonicNowNs();

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_BOOT_MARKER_H_
