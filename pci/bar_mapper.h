// The vBAR mapper: keeps KVM memory slots equal to what the guest has decoded.
#ifndef PCIVMM_PCI_BAR_MAPPER_H_
#define PCIVMM_PCI_BAR_MAPPER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"
#include "mmio/memslot_table.h"
#include "pci/latency_histogram.h"
#include "pci/pci_bus.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm {

// eager: map on decode on, unmap on decode off (a naive hypervisor, the baseline).
// deferred: decode off keeps the slot; decode on keeps it if the address is unchanged and
// moves it if not; a stale slot is evicted at once when anything else needs its range.
enum class MapPolicy { kEager, kDeferred };
const char* MapPolicyName(MapPolicy policy);

// Reproduces another hypervisor's mapping cost: each map or unmap of a BAR is delayed by
// `ns_per_gib` per GiB (sleeping on the vCPU that caused it when `sleep`), and the delay is
// reported apart from the measured ioctl time.
struct CostModel {
  uint64_t ns_per_gib = 0;
  bool sleep = true;
};

struct BarMapStats {
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t moves = 0;
  uint64_t conflicts = 0;
  LatencyHistogram ioctl;  // every map, unmap and move, around the memslot ioctl(s)
  uint64_t modelled_ns = 0;
};

enum class MapEventKind { kMap, kUnmap, kMove, kEvict, kConflict };
struct MapEvent {
  MapEventKind kind;
  Bdf bdf;
  int bar;
  uint64_t gpa;  // new address (map, move, conflict) or old one (unmap, evict)
  uint64_t size;
  uint64_t ns;
};
class MapEventSink {
 public:
  virtual ~MapEventSink() = default;
  virtual void OnMapEvent(const MapEvent& event) = 0;  // called under the mapper's lock
};

// Watches every config write to a function's command register and BARs (any path, host
// writes too) and installs, removes or moves one memory slot per memory BAR.
//
// Never mapped: a BAR whose decode is off (eager), a BAR in a sizing probe (its address
// bits all ones), the low half of a 64-bit BAR written without its high half yet, and a BAR
// that would overlap RAM, the firmware area, the ECAM window, the APICs, another slot, or go
// beyond the guest physical address width (a conflict: counted, reported, not decoded, so
// guest accesses there trap and read all-ones).
//
// Safety: removing a slot while another vCPU is inside the BAR is safe. KVM's slot update
// waits (SRCU) for vCPUs that may hold the old mapping and zaps it; a racing access then
// exits as MMIO and reads all-ones. The host backing stays mapped for the VM's lifetime, so
// nothing KVM or a vCPU holds is ever freed under it.
class BarMapper : public ConfigWriteObserver {
 public:
  struct Options {
    MapPolicy policy = MapPolicy::kEager;
    CostModel cost;
    std::vector<AddressRange> reserved;  // RAM, firmware, ECAM, APICs
    int phys_bits = 48;
  };

  BarMapper(MemslotTable& slots, Options options);
  ~BarMapper() override;

  // Backs every memory BAR of `f` with host memory (memfd, MAP_NORESERVE) and starts
  // watching it; maps what is decoded now (the hand-off state).
  absl::Status Attach(PciFunction& f);

  void OnConfigWrite(PciFunction& function, uint16_t offset, uint8_t width) override;

  void SetPolicy(MapPolicy policy);
  MapPolicy policy() const;
  void SetCostModel(CostModel cost);
  CostModel cost_model() const;
  void SetEventSink(MapEventSink* sink);

  // The host view of a BAR's memory (to seed it or to check what the guest wrote).
  absl::StatusOr<absl::Span<uint8_t>> Backing(const PciFunction& f, int bar) const;
  BarMapStats stats(const PciFunction& f, int bar) const;
  BarMapStats Total() const;
  // Zeroes every BAR's counters and histogram (the API's ResetStats).
  void ResetStats();
  std::optional<uint64_t> MappedAt(const PciFunction& f, int bar) const;

 private:
  struct BarState {
    PciFunction* function;
    BarSpec spec;
    HostMapping backing;
    std::optional<uint32_t> slot;
    uint64_t slot_gpa = 0;
    bool half_written = false;            // 64-bit BAR: low dword written, high not yet
    std::optional<uint64_t> conflict_at;  // counted once per refused address
    BarMapStats stats;
  };
  using Key = std::pair<const PciFunction*, int>;

  void Reconcile(PciFunction& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileBar(BarState& b, bool decode) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool InSizingProbe(const BarState& b) const;
  bool Placeable(BarState& b, const AddressRange& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Installs b's slot at gpa: the ns since t0, or nullopt (counted as a conflict).
  std::optional<uint64_t> Install(BarState& b, uint64_t gpa, uint64_t t0)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Map(BarState& b, uint64_t gpa) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unmap(BarState& b, MapEventKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Move(BarState& b, uint64_t gpa) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Charge(BarState& b, uint64_t ioctl_ns, int operations) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(const BarState& b, MapEventKind kind, uint64_t gpa, uint64_t ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  MemslotTable& slots_;
  mutable absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  MapEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<Key, std::unique_ptr<BarState>> bars_ ABSL_GUARDED_BY(mu_);
  std::vector<PciFunction*> functions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm

#endif  // PCIVMM_PCI_BAR_MAPPER_H_
