#include "pci/bar_mapper.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Bdf BdfOf(const PciFunction& f) {
  return {0, static_cast<uint8_t>(f.spec().slot), static_cast<uint8_t>(f.spec().function)};
}

// Sleep still owed to the cost model by this thread, paid once the mapper lock is released.
thread_local uint64_t owed_sleep_ns = 0;

}  // namespace

const char* MapPolicyName(MapPolicy policy) {
  return policy == MapPolicy::kEager ? "eager" : "deferred";
}

BarMapper::BarMapper(MemslotTable& slots, Options options)
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

absl::Status BarMapper::Attach(PciFunction& f) {
  {
    absl::MutexLock lock(&mu_);
    for (const BarSpec& spec : f.spec().bars) {
      if (spec.kind == BarKind::kIo) continue;
      const std::string name = absl::StrFormat("bar-%s-%d", f.spec().name, spec.index);
      PCIVMM_ASSIGN_OR_RETURN(HostMapping backing, HostMapping::CreateMemfd(name, spec.size));
      auto state =
          std::make_unique<BarState>(BarState{&f, spec, std::move(backing), {}, 0, false, {}, {}});
      bars_[{&f, spec.index}] = std::move(state);
    }
    functions_.push_back(&f);
    Reconcile(f);
  }
  f.SetWriteObserver(this);
  return absl::OkStatus();
}

void BarMapper::OnConfigWrite(PciFunction& f, uint16_t offset, uint8_t width) {
  {
    absl::MutexLock lock(&mu_);
    const bool command = AccessTouches(offset, width, cfg::kCommand, 2);
    for (const BarSpec& spec : f.spec().bars) {
      auto it = bars_.find({&f, spec.index});
      if (it == bars_.end() || spec.kind != BarKind::kMem64) continue;
      BarState& b = *it->second;
      const uint16_t low = BarOffset(spec.index);
      if (AccessTouches(offset, width, low, 4)) b.half_written = true;
      if (AccessTouches(offset, width, static_cast<uint16_t>(low + 4), 4) || command) {
        b.half_written = false;
      }
    }
    Reconcile(f);
  }
  if (owed_sleep_ns > 0) {
    std::this_thread::sleep_for(std::chrono::nanoseconds(owed_sleep_ns));
    owed_sleep_ns = 0;
  }
}

void BarMapper::Reconcile(PciFunction& f) {
  const bool decode = (f.Read(cfg::kCommand, 2) & cfg::kCommandMemory) != 0;
  for (const BarSpec& spec : f.spec().bars) {
    auto it = bars_.find({&f, spec.index});
    if (it != bars_.end()) ReconcileBar(*it->second, decode);
  }
}

void BarMapper::ReconcileBar(BarState& b, bool decode) {
  const uint64_t addr = b.function->BarAddress(b.spec);
  const auto range = AddressRange::Make(addr, b.spec.size);
  if (decode && !b.half_written && !InSizingProbe(b) && range) {
    if (b.slot && b.slot_gpa == addr) return;
    if (!Placeable(b, *range)) {
      if (b.slot) Unmap(b, MapEventKind::kUnmap);
      return;
    }
    if (b.slot) {
      Move(b, addr);
    } else {
      Map(b, addr);
    }
    return;
  }
  // Not decoded at a usable address: eager drops the slot, deferred keeps it (stale).
  if (b.slot && options_.policy == MapPolicy::kEager) Unmap(b, MapEventKind::kUnmap);
}

// PCI 3.0, 6.2.5.1: sizing writes all 1's; the address bits then read back as ones. For a
// 64-bit BAR the high dword decides (the low dword alone can be a real address).
bool BarMapper::InSizingProbe(const BarState& b) const {
  const uint16_t off = BarOffset(b.spec.index);
  const uint64_t size_mask = ~(b.spec.size - 1);
  if (b.spec.kind == BarKind::kMem64) {
    const auto high_mask = static_cast<uint32_t>(size_mask >> 32);
    if (high_mask != 0) {
      return (b.function->Read(static_cast<uint16_t>(off + 4), 4) & high_mask) == high_mask;
    }
  }
  const uint32_t low_mask = 0xFFFFFFF0u & static_cast<uint32_t>(size_mask);
  return low_mask != 0 && (b.function->Read(off, 4) & low_mask) == low_mask;
}

bool BarMapper::Placeable(BarState& b, const AddressRange& r) {
  const uint64_t limit = 1ull << options_.phys_bits;
  bool ok = r.end() <= limit;
  for (const AddressRange& reserved : options_.reserved) ok = ok && !reserved.Overlaps(r);
  // Other slots: only a stale BAR slot (decode off, kept by the deferred policy) may yield.
  std::vector<BarState*> stale;
  for (const Memslot& m : slots_.Overlapping(r)) {
    if (b.slot && m.id == *b.slot) continue;
    BarState* other = nullptr;
    for (auto& [key, s] : bars_) {
      if (s->slot && *s->slot == m.id) other = s.get();
    }
    const bool other_decodes =
        other != nullptr && (other->function->Read(cfg::kCommand, 2) & cfg::kCommandMemory) != 0;
    if (other == nullptr || other_decodes) ok = false;
    if (other != nullptr) stale.push_back(other);
  }
  if (!ok) {
    if (b.conflict_at == r.base()) return false;
    b.conflict_at = r.base();
    ++b.stats.conflicts;
    Emit(b, MapEventKind::kConflict, r.base(), 0);
    PCIVMM_LOG_GUEST("pci %s BAR%d at [%#x, %#x): conflict, not mapped",
                     BdfOf(*b.function).ToString(), b.spec.index, r.base(), r.end());
    return false;
  }
  for (BarState* s : stale) Unmap(*s, MapEventKind::kEvict);
  return true;
}

std::optional<uint64_t> BarMapper::Install(BarState& b, uint64_t gpa, uint64_t t0) {
  // The backing is a live memfd mapping of exactly the BAR's size, kept until ~BarMapper.
  auto id = slots_.Install(gpa, b.spec.size, b.backing.data(), /*read_only=*/false);
  const uint64_t ns = NowNs() - t0;
  if (!id.ok()) {
    ++b.stats.conflicts;
    Emit(b, MapEventKind::kConflict, gpa, ns);
    PCIVMM_LOG_GUEST("pci %s BAR%d: map at %#x failed: %s", BdfOf(*b.function).ToString(),
                     b.spec.index, gpa, id.status().ToString());
    return std::nullopt;
  }
  b.slot = *id;
  b.slot_gpa = gpa;
  b.conflict_at.reset();
  return ns;
}

void BarMapper::Map(BarState& b, uint64_t gpa) {
  const std::optional<uint64_t> ns = Install(b, gpa, NowNs());
  if (!ns) return;
  ++b.stats.maps;
  Charge(b, *ns, 1);
  Emit(b, MapEventKind::kMap, gpa, *ns);
}

void BarMapper::Unmap(BarState& b, MapEventKind kind) {
  const uint64_t t0 = NowNs();
  absl::Status st = slots_.Remove(*b.slot);
  const uint64_t ns = NowNs() - t0;
  if (!st.ok()) LogLine("E", absl::StrFormat("pci BAR unmap failed: %s", st.ToString()));
  b.slot.reset();
  ++b.stats.unmaps;
  Charge(b, ns, 1);
  Emit(b, kind, b.slot_gpa, ns);
}

// Remove + install, timed as one operation (two for the cost model).
void BarMapper::Move(BarState& b, uint64_t gpa) {
  const uint64_t t0 = NowNs();
  if (absl::Status st = slots_.Remove(*b.slot); !st.ok()) {
    LogLine("E", absl::StrFormat("pci BAR move: removing the old slot failed: %s", st.ToString()));
  }
  b.slot.reset();
  const std::optional<uint64_t> ns = Install(b, gpa, t0);
  if (!ns) return;
  ++b.stats.moves;
  Charge(b, *ns, 2);
  Emit(b, MapEventKind::kMove, gpa, *ns);
}

void BarMapper::Charge(BarState& b, uint64_t ioctl_ns, int operations) {
  b.stats.ioctl.Add(ioctl_ns);
  if (options_.cost.ns_per_gib == 0) return;
  const long double gib = static_cast<long double>(b.spec.size) / kGiB;
  const auto delay = static_cast<uint64_t>(gib * options_.cost.ns_per_gib * operations);
  b.stats.modelled_ns += delay;
  if (options_.cost.sleep) owed_sleep_ns += delay;
}

void BarMapper::Emit(const BarState& b, MapEventKind kind, uint64_t gpa, uint64_t ns) {
  if (sink_ != nullptr)
    sink_->OnMapEvent({kind, BdfOf(*b.function), b.spec.index, gpa, b.spec.size, ns});
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
  auto it = bars_.find({&f, bar});
  if (it == bars_.end()) {
    return absl::NotFoundError(absl::StrFormat("%s has no memory BAR%d", BdfOf(f).ToString(), bar));
  }
  return it->second->backing.span();
}

BarMapStats BarMapper::stats(const PciFunction& f, int bar) const {
  absl::MutexLock lock(&mu_);
  auto it = bars_.find({&f, bar});
  return it == bars_.end() ? BarMapStats{} : it->second->stats;
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
  auto it = bars_.find({&f, bar});
  if (it == bars_.end() || !it->second->slot) return std::nullopt;
  return it->second->slot_gpa;
}

}  // namespace pcivmm
