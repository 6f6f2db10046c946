#include "pci/vfio/passthrough_bars.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "pci/bar_relocation.h"
#include "vmm/base/log.h"

namespace pcivmm::vfio {
namespace {

// A BAR's trapping range on a bus: every access goes to the function's BARs.
class BarTrap : public mmio::IoDevice {
 public:
  BarTrap(PassthroughBars* owner, const pci::PciFunction& function, int bar)
      : owner_(owner), bar_(bar), name_(absl::StrFormat("%s-bar%d", function.spec().name, bar)) {}
  std::string_view Name() const override { return name_; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) override {
    owner_->Read(bar_, offset, data);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) override {
    owner_->Write(bar_, offset, data);
  }

 private:
  PassthroughBars* const owner_;
  const int bar_;
  const std::string name_;
};

}  // namespace

std::vector<pci::BarPiece> SlotPieces(const DeviceRegion& region, int bar,
                                      const std::vector<TrappedRange>& msix_ranges) {
  std::vector<pci::BarPiece> pieces;
  for (const MappedArea& a : region.mapped) pieces.push_back({a.offset, a.size, a.host});
  for (const TrappedRange& t : msix_ranges) {
    if (t.bar != bar) continue;
    std::vector<pci::BarPiece> next;
    for (const pci::BarPiece& p : pieces) {
      const uint64_t end = p.offset + p.size;
      if (t.end <= p.offset || t.begin >= end) {
        next.push_back(p);
        continue;
      }
      if (t.begin > p.offset) next.push_back({p.offset, t.begin - p.offset, p.host});
      if (t.end < end) next.push_back({t.end, end - t.end, p.host + (t.end - p.offset)});
    }
    pieces = std::move(next);
  }
  return pieces;
}

// The relocator for one BAR's trapping range. The bus moves a range in one step and leaves
// it where it was when the move fails: that is the rollback.
class PassthroughBars::TrapRelocator : public pci::BarRelocator {
 public:
  TrapRelocator(PassthroughBars& owner, Trap& trap, int bar)
      : owner_(owner), trap_(trap), bar_(bar) {}
  std::optional<uint64_t> placed_at() const {
    return trap_.region >= 0 ? std::optional<uint64_t>(trap_.base.load()) : std::nullopt;
  }
  absl::Status Place(uint64_t to) override {
    auto region = trap_.bus->Register(to, trap_.spec->size,
                                      std::make_shared<BarTrap>(&owner_, owner_.function_, bar_));
    if (!region.ok()) return region.status();
    trap_.region = *region;
    trap_.base.store(to);
    return absl::OkStatus();
  }
  absl::Status Move(uint64_t /*from*/, uint64_t to) override {
    if (absl::Status st = trap_.bus->Move(trap_.region, to); !st.ok()) return st;
    trap_.base.store(to);
    return absl::OkStatus();
  }
  absl::Status Remove(uint64_t /*from*/) override {
    if (absl::Status st = trap_.bus->Unregister(trap_.region); !st.ok()) return st;
    trap_.region = -1;
    return absl::OkStatus();
  }

 private:
  PassthroughBars& owner_;
  Trap& trap_;
  const int bar_;
};

PassthroughBars::~PassthroughBars() {
  for (Trap& t : traps_) {
    if (t.region >= 0) t.bus->Unregister(t.region).IgnoreError();
  }
}

absl::Status PassthroughBars::Attach(mmio::Bus& mmio, mmio::Bus& pio, pci::BarMapper& mapper,
                                     bool mmap_bars, const std::vector<TrappedRange>& msix_ranges) {
  std::vector<pci::ExternalBar> external;
  for (const pci::BarSpec& b : function_.spec().bars) {
    Trap& t = traps_[static_cast<size_t>(b.index)];
    t.spec = &b;
    t.bus = b.kind == pci::BarKind::kIo ? &pio : &mmio;
    // The firmware's address, decoded or not: a trapped access checks the decode itself.
    TrapRelocator trap(*this, t, b.index);
    if (absl::Status st = trap.Place(function_.BarAddress(b)); !st.ok()) {
      base::LogLine("W", absl::StrFormat("vfio %s BAR%d: no trapping range yet: %s", device_.name(),
                                         b.index, st.ToString()));
    }
    if (b.kind == pci::BarKind::kIo || !mmap_bars) continue;
    std::vector<pci::BarPiece> pieces = SlotPieces(device_.region(b.index), b.index, msix_ranges);
    if (!pieces.empty()) external.push_back({b.index, std::move(pieces)});
  }
  return mapper.AttachExternal(function_, external);
}

// Trapping ranges follow a BAR when the guest decodes it at a new address (Linux moves BARs
// with decode off, so the range moves on the decode-on write); while the BAR decodes nowhere
// its range stays where it was, inert (see Decoded()).
void PassthroughBars::Reconcile() {
  const pci::BarRegisters regs = function_.bar_registers();
  for (size_t i = 0; i < traps_.size(); ++i) {
    Trap& t = traps_[i];
    if (t.spec == nullptr) continue;
    TrapRelocator trap(*this, t, static_cast<int>(i));
    const pci::BarChange change = pci::PlanBarChange(
        trap.placed_at(), pci::DecodeBar(*t.spec, regs).decoded_at(), /*keep_stale=*/true);
    if (absl::Status st = pci::ApplyBarChange(trap, change); !st.ok()) {
      PCIVMM_LOG_GUEST("vfio %s BAR%d at %#x: trapping range not moved: %s", device_.name(), i,
                       change.to, st.ToString());
    }
  }
}

bool PassthroughBars::Decoded(int bar) const {
  const Trap& t = traps_[static_cast<size_t>(bar)];
  if (t.spec == nullptr) return false;
  const auto command = static_cast<uint16_t>(function_.ReadEmulated(pci::cfg::kCommand, 2));
  return pci::DecodeEnabled(t.spec->kind, command) &&
         function_.BarAddress(*t.spec) == t.base.load();
}

void PassthroughBars::Read(int bar, uint64_t offset, absl::Span<uint8_t> data) {
  if (!Decoded(bar)) {
    std::fill(data.begin(), data.end(), 0xFF);
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (absl::Status st = device_.Read(bar, offset, data); !st.ok()) {
    std::fill(data.begin(), data.end(), 0xFF);
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s BAR%d read +%#x: %s", device_.name(), bar, offset, st.ToString());
    return;
  }
  reads_.fetch_add(1, std::memory_order_relaxed);
}

void PassthroughBars::Write(int bar, uint64_t offset, absl::Span<const uint8_t> data) {
  if (!Decoded(bar)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (absl::Status st = device_.Write(bar, offset, data); !st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s BAR%d write +%#x: %s", device_.name(), bar, offset, st.ToString());
    return;
  }
  writes_.fetch_add(1, std::memory_order_relaxed);
}

PassthroughBars::Counters PassthroughBars::counters() const {
  Counters c;
  c.reads = reads_.load(std::memory_order_relaxed);
  c.writes = writes_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  c.device_errors = device_errors_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace pcivmm::vfio
