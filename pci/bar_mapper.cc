#include "pci/bar_mapper.h"

#include <chrono>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Sleep still owed to the cost model by this thread, paid once the mapper lock is released.
thread_local uint64_t owed_sleep_ns = 0;

}  // namespace

const char* MapPolicyName(MapPolicy policy) {
  return policy == MapPolicy::kEager ? "eager" : "deferred";
}

BarMapper::BarMapper(mmio::MemslotTable& slots, Options options)
    : slots_(slots), options_(std::move(options)) {}

BarMapper::~BarMapper() {
  std::vector<PciFunction*> functions;
  {
    absl::MutexLock lock(&mu_);
    functions = functions_;
  }
  for (PciFunction* f : functions) f->SetWriteObserver(nullptr);
  absl::MutexLock lock(&mu_);
  for (auto& [key, b] : bars_) {
    if (b->slot) slots_.Remove(*b->slot).IgnoreError();
  }
}

absl::Status BarMapper::Attach(PciFunction& f, std::vector<const PciFunction*> upstream) {
  {
    absl::MutexLock lock(&mu_);
    if (!upstream.empty()) upstream_[&f] = std::move(upstream);
    for (const BarSpec& spec : f.spec().bars) {
      if (spec.kind == BarKind::kIo) continue;
      const std::string name = absl::StrFormat("bar-%s-%d", f.spec().name, spec.index);
      PCIVMM_ASSIGN_OR_RETURN(base::HostMapping backing,
                              base::HostMapping::CreateMemfd(name, spec.size));
      auto state = std::make_unique<BarState>(BarState{&f, spec, std::move(backing)});
      state->length = spec.size;
      state->host = state->backing->data();
      bars_[{&f, spec.index, 0}] = std::move(state);
    }
    functions_.push_back(&f);
    Reconcile(f);
  }
  f.SetWriteObserver(this);
  return absl::OkStatus();
}

namespace {

absl::Status CheckPiece(const PciFunction& f, const BarSpec& spec, int index, const BarPiece& p) {
  const bool aligned = p.offset % 4096 == 0 && p.size % 4096 == 0 && p.size != 0;
  const auto end = mmio::CheckedAdd(p.offset, p.size);
  if (aligned && end && *end <= spec.size && p.host != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrFormat(
      "devices[%s].bars[%d]: piece [%#x, +%#x) is not a 4 KiB-aligned part of the BAR",
      f.spec().name, index, p.offset, p.size));
}

}  // namespace

absl::Status BarMapper::AttachExternal(PciFunction& f, const std::vector<ExternalBar>& bars) {
  {
    absl::MutexLock lock(&mu_);
    for (const ExternalBar& bar : bars) {
      const BarSpec* spec = nullptr;
      for (const BarSpec& s : f.spec().bars) {
        if (s.index == bar.index) spec = &s;
      }
      if (spec == nullptr || spec->kind == BarKind::kIo) {
        return absl::InvalidArgumentError(
            absl::StrFormat("devices[%s].bars: BAR%d is not a memory BAR of the function",
                            f.spec().name, bar.index));
      }
      for (const BarPiece& p : bar.pieces) {
        PCIVMM_RETURN_IF_ERROR(CheckPiece(f, *spec, bar.index, p));
      }
      for (size_t i = 0; i < bar.pieces.size(); ++i) {
        const BarPiece& p = bar.pieces[i];
        auto state = std::make_unique<BarState>(
            BarState{&f, *spec, std::nullopt, p.offset, p.size, p.host, /*external=*/true});
        bars_[{&f, bar.index, static_cast<int>(i)}] = std::move(state);
      }
    }
    functions_.push_back(&f);
    Reconcile(f);
  }
  f.SetWriteObserver(this);
  return absl::OkStatus();
}

std::vector<BarMapper::BarState*> BarMapper::Pieces(const PciFunction& f, int bar) const {
  std::vector<BarState*> out;
  for (auto it = bars_.lower_bound({&f, bar, 0});
       it != bars_.end() && std::get<0>(it->first) == &f && std::get<1>(it->first) == bar; ++it) {
    out.push_back(it->second.get());
  }
  return out;
}

void BarMapper::WatchBridge(PciFunction& bridge) { bridge.SetWriteObserver(this); }

void BarMapper::OnConfigWrite(PciFunction& f, uint16_t /*offset*/, uint8_t /*width*/) {
  {
    absl::MutexLock lock(&mu_);
    if (!f.is_bridge()) {
      Reconcile(f);
    } else {
      for (PciFunction* g : functions_) {
        auto up = upstream_.find(g);
        if (up != upstream_.end() && absl::c_linear_search(up->second, &f)) Reconcile(*g);
      }
    }
  }
  if (owed_sleep_ns > 0) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(owed_sleep_ns));
    owed_sleep_ns = 0;
  }
}

void BarMapper::Reconcile(PciFunction& f) {
  const BarRegisters regs = f.bar_registers();
  for (const BarSpec& spec : f.spec().bars) {
    BarPlacement bar = DecodeBar(spec, regs);
    if (bar.decoded() && !Forwarded(f, bar.address, spec.size)) {
      bar.decode = BarDecode::kBridgeClosed;
    }
    for (BarState* b : Pieces(f, spec.index)) ReconcileBar(*b, bar);
  }
}

// PCI-to-PCI Bridge Architecture 1.2, 4.3: a bridge forwards a memory request downstream only
// inside its memory or prefetchable window, with its Memory Space enable set; below several
// bridges, every one of them must.
bool BarMapper::Forwarded(const PciFunction& f, uint64_t address, uint64_t size) const {
  const auto up = upstream_.find(&f);
  if (up == upstream_.end()) return true;
  return absl::c_all_of(up->second, [&](const PciFunction* bridge) {
    return DecodeBridgeWindows(bridge->bridge_registers()).ForwardsMemory(address, size);
  });
}

void BarMapper::ReconcileBar(BarState& b, const BarPlacement& bar) {
  std::optional<mmio::AddressRange> range;  // the piece's, where the BAR decodes
  if (const auto base = bar.decoded() ? mmio::CheckedAdd(bar.address, b.offset) : std::nullopt) {
    range = mmio::AddressRange::Make(*base, b.length);
  }
  // Not decoded at a usable address: eager drops the slot, deferred keeps it (stale), except
  // over a real device, which must never be reachable while the guest's decode is off.
  const bool keep_stale = options_.policy == MapPolicy::kDeferred && !b.external;
  const BarChange change =
      PlanBarChange(b.slot ? std::optional<uint64_t>(b.slot_gpa) : std::nullopt,
                    range ? std::optional<uint64_t>(range->base()) : std::nullopt, keep_stale);
  switch (change.kind) {
    case BarChange::Kind::kNone:
      return;
    case BarChange::Kind::kRemove:
      return Unmap(b, MapEventKind::kUnmap);
    case BarChange::Kind::kPlace:
      if (Placeable(b, *range)) Map(b, change.to);
      return;
    case BarChange::Kind::kMove:
      // A conflict at the new address: the BAR is decoded nowhere, its old slot goes.
      if (!Placeable(b, *range)) return Unmap(b, MapEventKind::kUnmap);
      return Move(b, change.to);
  }
}

bool BarMapper::Placeable(BarState& b, const mmio::AddressRange& r) {
  const uint64_t limit = 1ull << options_.phys_bits;
  bool ok = r.end() <= limit;
  for (const mmio::AddressRange& reserved : options_.reserved) ok = ok && !reserved.Overlaps(r);
  // Other slots: only a stale BAR slot (decode off, kept by the deferred policy) may yield.
  std::vector<BarState*> stale;
  for (const mmio::Memslot& m : slots_.Overlapping(r)) {
    if (b.slot && m.id == *b.slot) continue;
    BarState* other = nullptr;
    for (auto& [key, s] : bars_) {
      if (s->slot && *s->slot == m.id) other = s.get();
    }
    const bool other_decodes =
        other != nullptr &&
        DecodeEnabled(other->spec.kind,
                      static_cast<uint16_t>(other->function->ReadEmulated(cfg::kCommand, 2)));
    if (other == nullptr || other_decodes) ok = false;
    if (other != nullptr) stale.push_back(other);
  }
  if (!ok) {
    if (b.conflict_at == r.base()) return false;
    b.conflict_at = r.base();
    ++b.stats.conflicts;
    Emit(b, MapEventKind::kConflict, r.base(), 0);
    PCIVMM_LOG_GUEST("pci %s BAR%d at [%#x, %#x): conflict, not mapped",
                     b.function->address().ToString(), b.spec.index, r.base(), r.end());
    return false;
  }
  for (BarState* s : stale) Unmap(*s, MapEventKind::kEvict);
  return true;
}

// The mapper's relocator: one BAR piece's memory slot.
class BarMapper::SlotRelocator : public BarRelocator {
 public:
  SlotRelocator(mmio::MemslotTable& slots, BarState& b) : slots_(slots), b_(b) {}

  absl::Status Place(uint64_t to) override {
    // The backing is a live memfd mapping of exactly the BAR's size, kept until ~BarMapper,
    // or a piece of a real device's BAR mapping, which its owner keeps until after us.
    PCIVMM_ASSIGN_OR_RETURN(const uint32_t id,
                            slots_.Install(to, b_.length, b_.host, /*read_only=*/false));
    b_.slot = id;
    b_.slot_gpa = to;
    return absl::OkStatus();
  }
  absl::Status Remove(uint64_t /*from*/) override {
    PCIVMM_RETURN_IF_ERROR(slots_.Remove(*b_.slot));
    b_.slot.reset();
    return absl::OkStatus();
  }

 private:
  mmio::MemslotTable& slots_;
  BarState& b_;
};

void BarMapper::Refused(BarState& b, uint64_t gpa, uint64_t ns, const absl::Status& why) {
  ++b.stats.conflicts;
  Emit(b, MapEventKind::kConflict, gpa, ns);
  PCIVMM_LOG_GUEST("pci %s BAR%d: map at %#x failed: %s", b.function->address().ToString(),
                   b.spec.index, gpa, why.ToString());
}

void BarMapper::Map(BarState& b, uint64_t gpa) {
  SlotRelocator slot(slots_, b);
  const uint64_t t0 = NowNs();
  const absl::Status st = ApplyBarChange(slot, {BarChange::Kind::kPlace, 0, gpa});
  const uint64_t ns = NowNs() - t0;
  if (!st.ok()) return Refused(b, gpa, ns, st);
  b.conflict_at.reset();
  ++b.stats.maps;
  Charge(b, ns, 1);
  Emit(b, MapEventKind::kMap, gpa, ns);
}

void BarMapper::Unmap(BarState& b, MapEventKind kind) {
  SlotRelocator slot(slots_, b);
  const uint64_t t0 = NowNs();
  const absl::Status st = ApplyBarChange(slot, {BarChange::Kind::kRemove, b.slot_gpa, 0});
  const uint64_t ns = NowNs() - t0;
  if (!st.ok()) base::LogLine("E", absl::StrFormat("pci BAR unmap failed: %s", st.ToString()));
  b.slot.reset();  // forgotten even if KVM refused: retrying would not help
  ++b.stats.unmaps;
  Charge(b, ns, 1);
  Emit(b, kind, b.slot_gpa, ns);
}

// Remove + install, timed as one operation (two for the cost model). If the new slot cannot
// be installed, the old one is put back (the rollback) and then goes like a conflict's.
void BarMapper::Move(BarState& b, uint64_t gpa) {
  SlotRelocator slot(slots_, b);
  const uint64_t t0 = NowNs();
  const absl::Status st = ApplyBarChange(slot, {BarChange::Kind::kMove, b.slot_gpa, gpa});
  const uint64_t ns = NowNs() - t0;
  if (!st.ok()) {
    Refused(b, gpa, ns, st);
    if (b.slot) Unmap(b, MapEventKind::kUnmap);
    return;
  }
  b.conflict_at.reset();
  ++b.stats.moves;
  Charge(b, ns, 2);
  Emit(b, MapEventKind::kMove, gpa, ns);
}

void BarMapper::Charge(BarState& b, uint64_t ioctl_ns, int operations) {
  b.stats.ioctl.Add(ioctl_ns);
  if (options_.cost.ns_per_gib == 0) return;
  const long double gib = static_cast<long double>(b.length) / kGiB;
  const auto delay = static_cast<uint64_t>(gib * options_.cost.ns_per_gib * operations);
  b.stats.modelled_ns += delay;
  if (options_.cost.sleep) owed_sleep_ns += delay;
}

void BarMapper::Emit(const BarState& b, MapEventKind kind, uint64_t gpa, uint64_t ns) {
  if (sink_ != nullptr)
    sink_->OnMapEvent({kind, b.function->address(), b.spec.index, gpa, b.length, ns});
}

void BarMapper::SetPolicy(MapPolicy policy) {
  absl::MutexLock lock(&mu_);
  options_.policy = policy;
  // Switching to eager drops every stale slot now.
  for (PciFunction* f : functions_) Reconcile(*f);
}

MapPolicy BarMapper::policy() const {
  absl::MutexLock lock(&mu_);
  return options_.policy;
}

void BarMapper::SetCostModel(CostModel cost) {
  absl::MutexLock lock(&mu_);
  options_.cost = cost;
}

CostModel BarMapper::cost_model() const {
  absl::MutexLock lock(&mu_);
  return options_.cost;
}

void BarMapper::SetEventSink(MapEventSink* sink) {
  absl::MutexLock lock(&mu_);
  sink_ = sink;
}

absl::StatusOr<absl::Span<uint8_t>> BarMapper::Backing(const PciFunction& f, int bar) const {
  absl::MutexLock lock(&mu_);
  const std::vector<BarState*> pieces = Pieces(f, bar);
  if (pieces.empty()) {
    return absl::NotFoundError(
        absl::StrFormat("%s has no memory BAR%d", f.address().ToString(), bar));
  }
  const BarState& b = *pieces.front();
  if (pieces.size() != 1 || b.offset != 0 || b.length != b.spec.size) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s BAR%d is backed by %d pieces, not one", f.address().ToString(), bar, pieces.size()));
  }
  return absl::Span<uint8_t>(b.host, b.length);
}

BarMapStats BarMapper::stats(const PciFunction& f, int bar) const {
  absl::MutexLock lock(&mu_);
  BarMapStats t;
  for (const BarState* b : Pieces(f, bar)) {
    t.maps += b->stats.maps;
    t.unmaps += b->stats.unmaps;
    t.moves += b->stats.moves;
    t.conflicts += b->stats.conflicts;
    t.modelled_ns += b->stats.modelled_ns;
    t.ioctl.Merge(b->stats.ioctl);
  }
  return t;
}

BarMapStats BarMapper::Total() const {
  absl::MutexLock lock(&mu_);
  BarMapStats t;
  for (const auto& [key, b] : bars_) {
    t.maps += b->stats.maps;
    t.unmaps += b->stats.unmaps;
    t.moves += b->stats.moves;
    t.conflicts += b->stats.conflicts;
    t.modelled_ns += b->stats.modelled_ns;
    t.ioctl.count += b->stats.ioctl.count;
    t.ioctl.sum_ns += b->stats.ioctl.sum_ns;
  }
  return t;
}

void BarMapper::ResetStats() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, b] : bars_) b->stats = BarMapStats{};
}

std::optional<uint64_t> BarMapper::MappedAt(const PciFunction& f, int bar) const {
  absl::MutexLock lock(&mu_);
  const std::vector<BarState*> pieces = Pieces(f, bar);
  if (pieces.empty() || !pieces.front()->slot) return std::nullopt;
  return pieces.front()->slot_gpa - pieces.front()->offset;
}

}  // namespace pcivmm::pci
