// The vBAR mapper: keeps KVM memory slots equal to what the guest has decoded.
#ifndef PCIVMM_PCI_BAR_MAPPER_H_
#define PCIVMM_PCI_BAR_MAPPER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"
#include "mmio/memslot_table.h"
#include "pci/bar_decode.h"
#include "pci/bar_relocation.h"
#include "pci/latency_histogram.h"
#include "pci/pci_bus.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm::pci {

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

// Part of a BAR backed by memory the caller owns (a real device's mmapped BAR): mapped at
// the BAR's address + offset. 4 KiB aligned; the memory must outlive the mapper.
struct BarPiece {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint8_t* host = nullptr;
};
struct ExternalBar {
  int index = 0;
  std::vector<BarPiece> pieces;  // the rest of the BAR is left to trap
};

// Watches every config write to a function's command register and BARs (any path, host
// writes too) and installs, removes or moves one memory slot per memory BAR.
//
// Where a BAR should be is the function's answer (DecodeBar, pci/bar_decode.h): nowhere while
// its decode is off, while it is in a sizing probe (its address bits all ones), or while a
// 64-bit BAR's low half is written without its high half yet. Each slot follows that answer
// through the one reconcile path (pci/bar_relocation.h); a move that fails is rolled back.
// Never mapped either: a BAR that would overlap RAM, the firmware area, the ECAM window, the
// APICs, another slot, or go beyond the guest physical address width (a conflict: counted,
// reported, not decoded, so guest accesses there trap and read all-ones).
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
    std::vector<mmio::AddressRange> reserved;  // RAM, firmware, ECAM, APICs
    int phys_bits = 48;
  };

  BarMapper(mmio::MemslotTable& slots, Options options);
  ~BarMapper() override;

  // Backs every memory BAR of `f` with host memory (memfd, MAP_NORESERVE) and starts
  // watching it; maps what is decoded now (the hand-off state). `upstream`: the bridges
  // between the function and bus 0 (watched with WatchBridge); a BAR decodes only through
  // every one of their windows.
  absl::Status Attach(PciFunction& f, std::vector<const PciFunction*> upstream = {});
  // Watches a bridge: a write to its command register or windows re-decides every BAR
  // below it.
  void WatchBridge(PciFunction& bridge);
  // The same for a real device's function: each piece becomes a slot of its own. Unlike
  // an emulated BAR, a piece never stays mapped while the guest's memory decode is off,
  // under either policy: the device would stay reachable where the guest expects all-ones.
  // InvalidArgument for a piece that is unaligned, outside its BAR, or on a non-memory BAR.
  absl::Status AttachExternal(PciFunction& f, const std::vector<ExternalBar>& bars);

  void OnConfigWrite(PciFunction& function, uint16_t offset, uint8_t width) override;

  void SetPolicy(MapPolicy policy);
  MapPolicy policy() const;
  void SetCostModel(CostModel cost);
  CostModel cost_model() const;
  void SetEventSink(MapEventSink* sink);

  // The host view of a BAR's memory (to seed it or to check what the guest wrote);
  // FailedPrecondition for an external BAR not backed by one piece as a whole.
  absl::StatusOr<absl::Span<uint8_t>> Backing(const PciFunction& f, int bar) const;
  BarMapStats stats(const PciFunction& f, int bar) const;  // summed over its pieces
  BarMapStats Total() const;
  // Zeroes every BAR's counters and histogram (the API's ResetStats).
  void ResetStats();
  // The BAR address its first piece is mapped for.
  std::optional<uint64_t> MappedAt(const PciFunction& f, int bar) const;

 private:
  // One slot's worth of a BAR: the whole BAR (emulated), or one piece of a real one.
  struct BarState {
    PciFunction* function;
    BarSpec spec;
    std::optional<base::HostMapping> backing;  // emulated: the memfd; external: none
    uint64_t offset = 0;                       // within the BAR
    uint64_t length = 0;
    uint8_t* host = nullptr;
    bool external = false;
    std::optional<uint32_t> slot{};
    uint64_t slot_gpa = 0;
    std::optional<uint64_t> conflict_at{};  // counted once per refused address
    BarMapStats stats{};
  };
  using Key = std::tuple<const PciFunction*, int, int>;  // function, BAR, piece
  class SlotRelocator;

  std::vector<BarState*> Pieces(const PciFunction& f, int bar) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Reconcile(PciFunction& f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Forwarded(const PciFunction& f, uint64_t address, uint64_t size) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReconcileBar(BarState& b, const BarPlacement& bar) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Placeable(BarState& b, const mmio::AddressRange& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A map or move to gpa the memslot table refused: counted and reported as a conflict.
  void Refused(BarState& b, uint64_t gpa, uint64_t ns, const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Map(BarState& b, uint64_t gpa) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unmap(BarState& b, MapEventKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Move(BarState& b, uint64_t gpa) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Charge(BarState& b, uint64_t ioctl_ns, int operations) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(const BarState& b, MapEventKind kind, uint64_t gpa, uint64_t ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mmio::MemslotTable& slots_;
  mutable absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  MapEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::map<Key, std::unique_ptr<BarState>> bars_ ABSL_GUARDED_BY(mu_);
  std::vector<PciFunction*> functions_ ABSL_GUARDED_BY(mu_);
  std::map<const PciFunction*, std::vector<const PciFunction*>> upstream_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_BAR_MAPPER_H_
