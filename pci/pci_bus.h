#ifndef PCIVMM_PCI_PCI_BUS_H_
#define PCIVMM_PCI_PCI_BUS_H_

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <utility>
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

// Told when a bridge's bus numbers change (which function answers at which address), after
// the write took effect, on the writing thread. Must not call back into PciBus::Write.
class RoutingObserver {
 public:
  virtual ~RoutingObserver() = default;
  virtual void OnRoutingChanged() = 0;
};

// The PCI segment: bus 0 and, behind PCIe ports (PCI-to-PCI bridges, pci/bridge.h), the
// buses the guest numbers; `bus_count` buses are decoded by ECAM. Every access path (PIO,
// ECAM, host) ends here and is routed by the bridges' bus numbers as the guest programmed them
// (PCI-to-PCI Bridge Architecture 1.2, 3.2.5.3-5). Functions are added before the VM runs and
// never removed, so lookups need no lock.
class PciBus {
 public:
  static absl::StatusOr<std::unique_ptr<PciBus>> Create(int bus_count);

  // Builds a function from `spec` (validated) at its slot/function: on bus 0, or on the
  // secondary bus of the port `spec.parent` (added before it).
  absl::StatusOr<PciFunction*> AddDevice(const DeviceSpec& spec);

  // Width 1, 2 or 4; an access that crosses a dword or leaves config space reads all-ones
  // (writes are dropped) and is counted as malformed. Absent functions read all-ones.
  uint32_t Read(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, int vcpu);
  void Write(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, uint32_t value, int vcpu);

  // The function the address reaches now (bus numbers as programmed), or nullptr.
  PciFunction* Find(Bdf bdf) const;
  std::vector<PciFunction*> functions() const;  // bus 0's in devfn order, then the others
  bool has_bridges() const { return !segments_.empty(); }
  // The function's counter index in stats() (ConfigStats) and page in config_pages().
  uint32_t IndexOf(const PciFunction& f) const;
  // The index of what answers at `bdf` now: on bus 0 its devfn (present or not), beyond it
  // the function the bridges route to, or ConfigStats::kNoFunction.
  uint32_t IndexAt(Bdf bdf) const { return Route(bdf).index; }
  // The functions on the secondary bus of `bridge` (nullptr: bus 0), in devfn order. (The
  // bridge a function sits behind: PciFunction::parent().)
  std::vector<PciFunction*> ChildrenOf(const PciFunction* bridge) const;
  // Where the function answers now, or nullopt when no programmed bus numbers reach it.
  std::optional<Bdf> AddressOf(const PciFunction& f) const;
  int bus_count() const { return bus_count_; }
  ConfigStats& stats() { return stats_; }
  const ConfigStats& stats() const { return stats_; }
  void SetTracer(ConfigTracer* tracer) { tracer_.store(tracer, std::memory_order_release); }
  // Before the VM runs (the ECAM fast path).
  void SetRoutingObserver(RoutingObserver* observer) { routing_ = observer; }
  // Marks the first and the latest config access in `profile`; before the vCPUs run.
  void SetBootProfile(base::BootProfile* profile) { profile_ = profile; }
  // The backing pages of the functions' config spaces, one per index (IndexOf; bus 0's
  // devfn d is page d), for the ECAM fast path.
  const base::HostMapping& config_pages() const { return pages_; }

 private:
  // One bus's functions by devfn (with their indices), and the bridges on it.
  struct Segment {
    std::array<PciFunction*, 256> functions{};
    std::array<uint32_t, 256> index{};
    std::vector<std::pair<PciFunction*, Segment*>> bridges;  // a bridge and its secondary bus
    PciFunction* parent = nullptr;                           // the bridge above; null: bus 0
  };
  struct Routed {
    PciFunction* function;
    uint32_t index;  // ConfigStats::kNoFunction for an absent function beyond bus 0
  };

  PciBus(int bus_count, base::HostMapping pages)
      : bus_count_(bus_count), pages_(std::move(pages)) {}
  absl::StatusOr<Segment*> SegmentFor(const DeviceSpec& spec);
  void Place(Segment& seg, const DeviceSpec& spec, std::unique_ptr<PciFunction> f, uint32_t index);
  Routed Route(Bdf bdf) const;
  static Routed RouteBelow(const Segment& seg, Bdf bdf);
  std::vector<const Segment*> AllSegments() const;
  void Trace(ConfigPath path, mmio::Direction dir, Bdf bdf, uint32_t index, uint16_t reg,
             uint8_t width, uint32_t value, int vcpu);

  const int bus_count_;
  base::HostMapping pages_;
  Segment root_;
  std::vector<std::unique_ptr<Segment>> segments_;   // the secondary buses of the bridges
  std::vector<std::unique_ptr<PciFunction>> owned_;  // every function, in the order added
  uint32_t next_index_ = 256;                        // indices 0..255: bus 0's devfns
  ConfigStats stats_;
  std::atomic<ConfigTracer*> tracer_{nullptr};
  base::BootProfile* profile_ = nullptr;
  RoutingObserver* routing_ = nullptr;
};

inline constexpr uint32_t AllOnes(uint8_t width) {
  return width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1;
}

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_PCI_BUS_H_
