// The one reconcile path for whatever follows a BAR: the device side says where the BAR
// decodes (pci/bar_decode.h), PlanBarChange turns that and where the mapping is now into one
// change, and a BarRelocator applies it, rolling back a move that fails. The vBAR mapper's
// memory slots (emulated and VFIO BARs) and a passthrough function's trapping ranges use it.
#ifndef PCIVMM_PCI_BAR_RELOCATION_H_
#define PCIVMM_PCI_BAR_RELOCATION_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"

namespace pcivmm::pci {

struct BarChange {
  enum class Kind : uint8_t { kNone, kPlace, kMove, kRemove };
  Kind kind = Kind::kNone;
  uint64_t from = 0;  // kMove, kRemove: where the mapping is
  uint64_t to = 0;    // kPlace, kMove: where the BAR decodes

  bool operator==(const BarChange&) const = default;
};

// `placed`: where the mapping is now (nullopt: nowhere); `want`: where the BAR decodes
// (BarPlacement::decoded_at()). A mapping that is not wanted anywhere is removed, unless
// `keep_stale` (the deferred policy's slots; trapping ranges, which check the decode
// themselves): then it stays where it is until the BAR decodes again.
BarChange PlanBarChange(std::optional<uint64_t> placed, std::optional<uint64_t> want,
                        bool keep_stale);

// Applies changes to one mapping (a memory slot, a trapping range). Every operation either
// succeeds or leaves the mapping where it was (a failed move whose rollback fails too leaves
// no mapping; its error says so).
class BarRelocator {
 public:
  virtual ~BarRelocator() = default;
  virtual absl::Status Place(uint64_t to) = 0;
  virtual absl::Status Remove(uint64_t from) = 0;
  // By default: remove, place at `to`, and on failure place it back at `from` (the old and
  // new ranges may overlap, so the new one cannot go in first). A relocator that can move
  // in one step (a bus range) overrides it.
  virtual absl::Status Move(uint64_t from, uint64_t to);
};

// Applies `change`. On failure the mapping is where it was before (rolled back) and the
// error is returned for the caller to report; the caller decides whether it stays there.
absl::Status ApplyBarChange(BarRelocator& relocator, const BarChange& change);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_BAR_RELOCATION_H_
