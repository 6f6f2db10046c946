#include "api/stats_collector.h"

#include "absl/strings/str_cat.h"
#include "api/proto_convert.h"
#include "api/vm_backend.h"

namespace pcivmm::api {
namespace {

constexpr pci::ConfigPath kPaths[] = {pci::ConfigPath::kPio, pci::ConfigPath::kEcam,
                                      pci::ConfigPath::kHost};
constexpr mmio::Direction kDirections[] = {mmio::Direction::kRead, mmio::Direction::kWrite};
constexpr uint16_t kDwords = static_cast<uint16_t>(pci::ConfigStats::kDwords);

uint64_t Sub(uint64_t now, uint64_t base) { return now > base ? now - base : 0; }

template <typename Map, typename Key>
uint64_t Lookup(const Map& m, const Key& k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}

size_t PathSlot(pci::ConfigPath p, mmio::Direction d) {
  return static_cast<size_t>(p) * 2 + static_cast<size_t>(d);
}

// Functions are counted by their index in the bus (pci/config_stats.h): bus 0's devfns, then
// the functions behind ports.
size_t FunctionSlot(uint32_t index, pci::ConfigPath p, mmio::Direction d) {
  return size_t{index} * pci::kConfigPathCount * 2 + PathSlot(p, d);
}

}  // namespace

uint64_t StatsCollector::RegisterKey(pci::ConfigPath p, mmio::Direction d, uint32_t index,
                                     uint16_t dword) {
  return ((uint64_t{index} * kDwords + dword) * pci::kConfigPathCount + static_cast<uint64_t>(p)) *
             2 +
         static_cast<uint64_t>(d);
}

uint64_t StatsCollector::Reason(int vcpu, uint32_t reason) const {
  const uint64_t now = src_.exits->vcpu(vcpu).exits(reason);
  const auto v = static_cast<size_t>(vcpu);
  return Sub(now, v < exits_.reasons.size() ? exits_.reasons[v][reason] : 0);
}

uint64_t StatsCollector::Port(uint16_t port, mmio::Direction d) const {
  const uint64_t now = src_.exits->pio(port, d);
  if (now == 0) return 0;
  return Sub(now, Lookup(exits_.ports, uint32_t{port} * 2 + static_cast<uint32_t>(d)));
}

uint64_t StatsCollector::Mmio(int region, mmio::Direction d) const {
  const uint64_t now = src_.exits->mmio(region, d);
  const auto slot = static_cast<size_t>(region + 1) * 2 + static_cast<size_t>(d);
  return Sub(now, slot < exits_.mmio.size() ? exits_.mmio[slot] : 0);
}

uint64_t StatsCollector::Register(pci::ConfigPath p, mmio::Direction d, uint32_t index,
                                  uint16_t dword) const {
  const uint64_t now =
      src_.pci->stats().register_accesses(p, d, index, static_cast<uint16_t>(dword * 4));
  if (now == 0) return 0;
  return Sub(now, Lookup(config_.registers, RegisterKey(p, d, index, dword)));
}

void StatsCollector::CollectExits(v1::ExitStats* out) const {
  absl::ReaderMutexLock lock(&mu_);
  const int vcpus = src_.exits->vcpu_count();
  uint64_t total = 0;
  for (uint32_t r = 0; r < kvm::VcpuExitStats::kMaxExitReason; ++r) {
    uint64_t n = 0;
    for (int v = 0; v < vcpus; ++v) n += Reason(v, r);
    if (n == 0) continue;
    total += n;
    v1::ExitReasonCount* c = out->add_by_reason();
    c->set_reason(kvm::ExitReasonName(r));
    c->set_code(r);
    c->set_count(n);
  }
  out->set_total(total);
  // Touched (port, direction) pairs come in ascending order, so both directions of a port
  // are adjacent.
  src_.exits->ForEachTouchedPort([this, out](uint16_t port, mmio::Direction d) {
    const uint64_t n = Port(port, d);
    if (n == 0) return;
    if (out->by_port_size() == 0 || out->by_port().rbegin()->port() != port) {
      out->add_by_port()->set_port(port);
    }
    v1::PortExitCount* c = out->mutable_by_port()->Mutable(out->by_port_size() - 1);
    (d == mmio::Direction::kRead ? c->set_reads(n) : c->set_writes(n));
  });
  for (int region = mmio::Bus::kUnclaimed; region < src_.mmio->region_count(); ++region) {
    const uint64_t rd = Mmio(region, mmio::Direction::kRead),
                   wr = Mmio(region, mmio::Direction::kWrite);
    if (rd + wr == 0) continue;
    v1::MmioRegionExitCount* c = out->add_by_mmio_region();
    c->set_region(region);
    c->set_name(src_.mmio->RegionName(region));
    c->set_reads(rd);
    c->set_writes(wr);
  }
  CollectVcpus(out);
}

void StatsCollector::CollectVcpus(v1::ExitStats* out) const {
  for (int v = 0; v < src_.exits->vcpu_count(); ++v) {
    v1::VcpuExitStats* s = out->add_by_vcpu();
    s->set_vcpu(static_cast<uint32_t>(v));
    uint64_t total = 0;
    for (uint32_t r = 0; r < kvm::VcpuExitStats::kMaxExitReason; ++r) {
      const uint64_t n = Reason(v, r);
      if (n == 0) continue;
      total += n;
      v1::ExitReasonCount* c = s->add_by_reason();
      c->set_reason(kvm::ExitReasonName(r));
      c->set_code(r);
      c->set_count(n);
    }
    s->set_total(total);
  }
}

void StatsCollector::CollectConfig(bool registers, std::optional<pci::Bdf> only,
                                   v1::ConfigStats* out) const {
  if (src_.pci == nullptr) return;
  absl::ReaderMutexLock lock(&mu_);
  const pci::ConfigStats& c = src_.pci->stats();
  for (pci::ConfigPath p : kPaths) {
    v1::ConfigPathCount* pc = out->add_by_path();
    pc->set_path(ToProto(p));
    pc->set_reads(Sub(c.accesses(p, mmio::Direction::kRead),
                      config_.by_path[PathSlot(p, mmio::Direction::kRead)]));
    pc->set_writes(Sub(c.accesses(p, mmio::Direction::kWrite),
                       config_.by_path[PathSlot(p, mmio::Direction::kWrite)]));
    pc->set_malformed(Sub(c.malformed(p), config_.malformed[static_cast<size_t>(p)]));
  }
  if (only) {
    CollectFunction(*only, registers, out);
    return;
  }
  for (const pci::PciFunction* f : src_.pci->functions())
    CollectFunction(f->address(), registers, out);
}

void StatsCollector::CollectFunction(pci::Bdf bdf, bool registers, v1::ConfigStats* out) const {
  const pci::ConfigStats& c = src_.pci->stats();
  const uint32_t index = src_.pci->IndexAt(bdf);  // where it answers now
  if (index >= pci::ConfigStats::kFunctions) return;
  for (pci::ConfigPath p : kPaths) {
    const uint64_t reads = Sub(c.function_accesses(p, mmio::Direction::kRead, index),
                               config_.functions[FunctionSlot(index, p, mmio::Direction::kRead)]);
    const uint64_t writes = Sub(c.function_accesses(p, mmio::Direction::kWrite, index),
                                config_.functions[FunctionSlot(index, p, mmio::Direction::kWrite)]);
    if (reads + writes == 0) continue;
    v1::ConfigFunctionCount* fc = out->add_by_function();
    *fc->mutable_bdf() = ToProto(bdf);
    fc->set_path(ToProto(p));
    fc->set_reads(reads);
    fc->set_writes(writes);
    if (registers) CollectRegisters(bdf, index, p, out);
  }
}

void StatsCollector::CollectRegisters(pci::Bdf bdf, uint32_t index, pci::ConfigPath p,
                                      v1::ConfigStats* out) const {
  for (uint16_t dw = 0; dw < kDwords; ++dw) {
    const uint64_t rd = Register(p, mmio::Direction::kRead, index, dw);
    const uint64_t wr = Register(p, mmio::Direction::kWrite, index, dw);
    if (rd + wr == 0) continue;
    v1::ConfigRegisterCount* rc = out->add_by_register();
    *rc->mutable_bdf() = ToProto(bdf);
    rc->set_offset(uint32_t{dw} * 4);
    rc->set_path(ToProto(p));
    rc->set_reads(rd);
    rc->set_writes(wr);
  }
}

void StatsCollector::CollectKvm(v1::KvmStats* out) const {
  if (src_.kvm == nullptr || !src_.kvm->unavailable.empty() || src_.kvm->vm == nullptr) {
    out->set_available(false);
    out->set_unavailable_reason(src_.kvm == nullptr ? "no KVM stats source"
                                                    : src_.kvm->unavailable);
    return;
  }
  absl::ReaderMutexLock lock(&mu_);
  out->set_available(true);
  CollectKvmFile(*src_.kvm->vm, "vm/", out->mutable_vm());
  for (size_t i = 0; i < src_.kvm->vcpus.size(); ++i) {
    v1::KvmVcpuStats* v = out->add_vcpus();
    v->set_vcpu(static_cast<uint32_t>(i));
    CollectKvmFile(*src_.kvm->vcpus[i], absl::StrCat("vcpu", i, "/"), v->mutable_stats());
  }
}

void StatsCollector::CollectKvmFile(const KvmStatsReader& r, const std::string& prefix,
                                    google::protobuf::RepeatedPtrField<v1::KvmStat>* out) const {
  auto values = r.Read();
  if (!values.ok()) return;
  for (const KvmStatValue& s : *values) {
    v1::KvmStat* o = out->Add();
    o->set_name(s.name);
    o->set_kind(ToProto(s.type));
    o->set_unit(s.unit);
    uint64_t sum = 0;
    for (uint64_t b : s.values) sum += b;
    const bool hist = s.values.size() != 1;
    if (hist) o->mutable_buckets()->Add(s.values.begin(), s.values.end());
    const bool cumulative = s.type == KvmStatValue::Type::kCumulative;
    o->set_value(cumulative ? Sub(sum, Lookup(kvm_, prefix + s.name)) : sum);
  }
}

namespace {

void AddBar(const pci::PciFunction& f, const pci::BarSpec& b, const pci::BarMapper& mapper,
            v1::MappingStats* out) {
  const pci::BarMapStats s = mapper.stats(f, b.index);
  v1::BarMappingStats* o = out->add_bars();
  *o->mutable_bdf() = ToProto(f.address());
  o->set_device(f.spec().name);
  o->set_bar(static_cast<uint32_t>(b.index));
  o->set_size(b.size);
  o->set_address(f.BarAddress(b));
  if (auto at = mapper.MappedAt(f, b.index)) o->set_mapped_gpa(*at);
  o->set_maps(s.maps);
  o->set_unmaps(s.unmaps);
  o->set_moves(s.moves);
  o->set_conflicts(s.conflicts);
  ToProto(s.ioctl, o->mutable_ioctl());
  o->set_modelled_ns(s.modelled_ns);
  v1::MappingTotals* t = out->mutable_totals();
  t->set_maps(t->maps() + s.maps);
  t->set_unmaps(t->unmaps() + s.unmaps);
  t->set_moves(t->moves() + s.moves);
  t->set_conflicts(t->conflicts() + s.conflicts);
  t->set_ioctl_count(t->ioctl_count() + s.ioctl.count);
  t->set_ioctl_sum_ns(t->ioctl_sum_ns() + s.ioctl.sum_ns);
  t->set_modelled_ns(t->modelled_ns() + s.modelled_ns);
}

}  // namespace

void StatsCollector::CollectMapping(std::optional<pci::Bdf> only, v1::MappingStats* out) const {
  if (src_.pci == nullptr || src_.mapper == nullptr) return;
  out->set_policy(ToProto(src_.mapper->policy()));
  out->set_cost_ns_per_gib(src_.mapper->cost_model().ns_per_gib);
  out->mutable_totals();
  for (const pci::PciFunction* f : src_.pci->functions()) {
    if (only && !(f->address() == *only)) continue;
    for (const pci::BarSpec& b : f->spec().bars) {
      if (b.kind != pci::BarKind::kIo) AddBar(*f, b, *src_.mapper, out);
    }
  }
}

void StatsCollector::Reset(uint32_t scopes) {
  absl::MutexLock lock(&mu_);
  if (scopes & kScopeExits) ResetExits();
  if ((scopes & kScopeConfig) && src_.pci != nullptr) ResetConfig();
  if ((scopes & kScopeKvm) && src_.kvm != nullptr && src_.kvm->vm != nullptr) ResetKvm();
  if ((scopes & kScopeMapping) && src_.mapper != nullptr) src_.mapper->ResetStats();
}

void StatsCollector::ResetExits() {
  const kvm::ExitStats& s = *src_.exits;
  exits_.reasons.assign(static_cast<size_t>(s.vcpu_count()), {});
  for (int v = 0; v < s.vcpu_count(); ++v) {
    for (uint32_t r = 0; r < kvm::VcpuExitStats::kMaxExitReason; ++r) {
      exits_.reasons[static_cast<size_t>(v)][r] = s.vcpu(v).exits(r);
    }
  }
  exits_.ports.clear();
  s.ForEachTouchedPort([this, &s](uint16_t port, mmio::Direction d) {
    exits_.ports[uint32_t{port} * 2 + static_cast<uint32_t>(d)] = s.pio(port, d);
  });
  exits_.mmio.assign((mmio::Bus::kMaxRegions + 1) * 2, 0);
  for (int region = mmio::Bus::kUnclaimed; region < mmio::Bus::kMaxRegions; ++region) {
    for (mmio::Direction d : kDirections) {
      exits_.mmio[static_cast<size_t>(region + 1) * 2 + static_cast<size_t>(d)] = s.mmio(region, d);
    }
  }
}

void StatsCollector::ResetConfig() {
  const pci::ConfigStats& c = src_.pci->stats();
  for (pci::ConfigPath p : kPaths) {
    for (mmio::Direction d : kDirections) config_.by_path[PathSlot(p, d)] = c.accesses(p, d);
    config_.malformed[static_cast<size_t>(p)] = c.malformed(p);
  }
  config_.registers.clear();
  for (uint32_t index = 0; index < pci::ConfigStats::kFunctions; ++index) {
    for (pci::ConfigPath p : kPaths) {
      for (mmio::Direction d : kDirections) {
        config_.functions[FunctionSlot(index, p, d)] = c.function_accesses(p, d, index);
      }
    }
    for (uint16_t dw = 0; dw < kDwords; ++dw) {
      for (pci::ConfigPath p : kPaths) {
        for (mmio::Direction d : kDirections) {
          const uint64_t n = c.register_accesses(p, d, index, static_cast<uint16_t>(dw * 4));
          if (n != 0) config_.registers[RegisterKey(p, d, index, dw)] = n;
        }
      }
    }
  }
}

void StatsCollector::ResetKvm() {
  kvm_.clear();
  auto record = [this](const KvmStatsReader& r, const std::string& prefix) {
    auto values = r.Read();
    if (!values.ok()) return;
    for (const KvmStatValue& s : *values) {
      if (s.type != KvmStatValue::Type::kCumulative) continue;
      uint64_t sum = 0;
      for (uint64_t b : s.values) sum += b;
      kvm_[prefix + s.name] = sum;
    }
  };
  record(*src_.kvm->vm, "vm/");
  for (size_t i = 0; i < src_.kvm->vcpus.size(); ++i) {
    record(*src_.kvm->vcpus[i], absl::StrCat("vcpu", i, "/"));
  }
}

}  // namespace pcivmm::api
