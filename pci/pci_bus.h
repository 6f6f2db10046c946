#ifndef PCIVMM_PCI_PCI_BUS_H_
#define PCIVMM_PCI_PCI_BUS_H_

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "pci/bdf.h"
#include "pci/config_stats.h"
#include "pci/pci_function.h"
#include "vmm/base/boot_profile.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm::pci {

// One trapped configuration access, as the trace stream sees it.
struct ConfigAccess {
  ConfigPath path;
  mmio::Direction direction;
  Bdf bdf;
  uint16_t reg;
  uint8_t width;
  uint32_t value;  // read result or written value
  int vcpu;
};

// Receives every trapped access. Called on the accessing vCPU thread: must not block.
class ConfigTracer {
 public:
  virtual ~ConfigTracer() = default;
  virtual void OnConfigAccess(const ConfigAccess& access) = 0;
};

// The PCI segment: bus 0 populated with emulated functions, `bus_count` buses decoded.
// Every access path (PIO, ECAM, host) ends here. Functions are added before the VM runs and
// never removed, so lookups need no lock.
class PciBus {
 public:
  static absl::StatusOr<std::unique_ptr<PciBus>> Create(int bus_count);

  // Builds a function from `spec` (validated) at its slot/function on bus 0.
  absl::StatusOr<PciFunction*> AddDevice(const DeviceSpec& spec);

  // Width 1, 2 or 4; an access that crosses a dword or leaves config space reads all-ones
  // (writes are dropped) and is counted as malformed. Absent functions read all-ones.
  uint32_t Read(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, int vcpu);
  void Write(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, uint32_t value, int vcpu);

  PciFunction* Find(Bdf bdf) const;
  std::vector<PciFunction*> functions() const;
  int bus_count() const { return bus_count_; }
  ConfigStats& stats() { return stats_; }
  const ConfigStats& stats() const { return stats_; }
  void SetTracer(ConfigTracer* tracer) { tracer_.store(tracer, std::memory_order_release); }
  // Marks the first and the latest config access in `profile`; before the vCPUs run.
  void SetBootProfile(base::BootProfile* profile) { profile_ = profile; }
  // The backing pages of bus 0's config spaces (one per devfn), for the ECAM fast path.
  const base::HostMapping& config_pages() const { return pages_; }

 private:
  PciBus(int bus_count, base::HostMapping pages)
      : bus_count_(bus_count), pages_(std::move(pages)) {}
  void Trace(ConfigPath path, mmio::Direction dir, Bdf bdf, uint16_t reg, uint8_t width,
             uint32_t value, int vcpu);

  const int bus_count_;
  base::HostMapping pages_;
  std::array<std::unique_ptr<PciFunction>, ConfigStats::kFunctions> bus0_{};
  ConfigStats stats_;
  std::atomic<ConfigTracer*> tracer_{nullptr};
  base::BootProfile* profile_ = nullptr;
};

inline constexpr uint32_t AllOnes(uint8_t width) {
  return width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1;
}

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_PCI_BUS_H_
