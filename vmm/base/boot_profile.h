// Where the milliseconds of a boot go: the time of each phase of pcivmm's own start and of
// the guest's boot, counted from the process's start as the kernel recorded it
// (/proc/self/stat, not from main(), so exec and dynamic linking count too).
#ifndef PCIVMM_VMM_BASE_BOOT_PROFILE_H_
#define PCIVMM_VMM_BASE_BOOT_PROFILE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace pcivmm::base {

// In the order a boot passes them.
enum class BootPhase : uint8_t {
  kMain,               // main() entered: exec and dynamic linking are behind
  kFlagsParsed,        // flags and --config-file read and validated
  kVmCreated,          // /dev/kvm opened, the VM fd made
  kRamMapped,          // guest RAM mapped and in its memory slots
  kVcpusCreated,       // vCPUs and the in-kernel irqchip made
  kDevicesAttached,    // legacy devices and the PCI platform (BARs, ECAM, the fast path)
  kImagesLoaded,       // kernel and initrd read into guest RAM
  kFirmwareBuilt,      // ACPI tables, E820, boot params, page tables, vCPU 0's registers
  kApiReady,           // the API listens (only with --api-socket or --api-tcp)
  kFirstKvmRun,        // vCPU 0 enters KVM_RUN
  kFirstConsoleByte,   // the guest's first byte on the serial console
  kFirstConfigAccess,  // the first PCI config access that exited (PIO, ECAM trap or write)
  kLastConfigAccess,   // the last one so far
  kBootMarker,         // the guest's init wrote the boot-done marker
  kExit,               // the VM stopped
};
inline constexpr int kBootPhaseCount = static_cast<int>(BootPhase::kExit) + 1;

// "main", "flags_parsed", ... (the API's, the metrics' and boot.json's phase names).
absl::string_view BootPhaseName(BootPhase phase);

class BootProfile {
 public:
  // The process's start time from /proc/self/stat (10 ms resolution: the kernel's clock
  // ticks); if that cannot be read, the time of construction (start_from_kernel() is false).
  BootProfile();

  // The time of `phase` now, the first time only. Lock-free; any thread; once marked, a call
  // costs one relaxed load.
  void Mark(BootPhase phase);
  // A phase that spans many events (the config accesses of enumeration): `first` the first
  // time, `latest` every time, until the boot marker. After it nothing more is timed, so a
  // running VM's exit path pays one relaxed load, not a clock read.
  void MarkSpan(BootPhase first, BootPhase latest);
  // Nanoseconds from the process's start to `phase`, if it was reached.
  std::optional<int64_t> ns(BootPhase phase) const;

  // The guest's own uptime (CLOCK_BOOTTIME) when it wrote the boot marker, as it reported it.
  void SetGuestUptimeNs(int64_t ns) { guest_uptime_ns_.store(ns, std::memory_order_relaxed); }
  std::optional<int64_t> guest_uptime_ns() const;

  bool start_from_kernel() const { return start_from_kernel_; }
  // One line per phase reached: "  first_kvm_run      812.345 ms".
  std::string Format() const;

 private:
  static constexpr int64_t kUnset = -1;
  int64_t start_ns_ = 0;  // CLOCK_MONOTONIC
  bool start_from_kernel_ = false;
  std::array<std::atomic<int64_t>, kBootPhaseCount> at_;
  std::atomic<int64_t> guest_uptime_ns_{kUnset};
};

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_BOOT_PROFILE_H_
