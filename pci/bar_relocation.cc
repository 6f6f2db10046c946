#include "pci/bar_relocation.h"

#include "absl/strings/str_cat.h"

namespace pcivmm::pci {

BarChange PlanBarChange(std::optional<uint64_t> placed, std::optional<uint64_t> want,
                        bool keep_stale) {
  using Kind = BarChange::Kind;
  if (want) {
    if (!placed) return {Kind::kPlace, 0, *want};
    if (*placed == *want) return {};
    return {Kind::kMove, *placed, *want};
  }
  if (placed && !keep_stale) return {Kind::kRemove, *placed, 0};
  return {};
}

absl::Status BarRelocator::Move(uint64_t from, uint64_t to) {
  if (absl::Status st = Remove(from); !st.ok()) return st;
  absl::Status st = Place(to);
  if (st.ok()) return st;
  // Roll back: the mapping goes back where it was, and the caller hears why it did not move.
  if (absl::Status back = Place(from); !back.ok()) {
    return {st.code(),
            absl::StrCat(st.message(), "; the old mapping is gone too: ", back.message())};
  }
  return st;
}

absl::Status ApplyBarChange(BarRelocator& relocator, const BarChange& change) {
  switch (change.kind) {
    case BarChange::Kind::kNone:
      return absl::OkStatus();
    case BarChange::Kind::kPlace:
      return relocator.Place(change.to);
    case BarChange::Kind::kMove:
      return relocator.Move(change.from, change.to);
    case BarChange::Kind::kRemove:
      return relocator.Remove(change.from);
  }
  return absl::InternalError("unknown BarChange kind");
}

}  // namespace pcivmm::pci
