#include "pci/pci_bus.h"

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::pci {
namespace {

// A write to a bridge's primary, secondary or subordinate bus number changes the routing.
bool TouchesBusNumbers(uint16_t offset, uint8_t width) {
  return AccessTouches(offset, width, bridge::kPrimaryBus, 3);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PciBus>> PciBus::Create(int bus_count) {
  if (bus_count < 1 || bus_count > 256) {
    return absl::InvalidArgumentError(
        absl::StrFormat("pci.bus_count: %d is outside 1..256", bus_count));
  }
  PCIVMM_ASSIGN_OR_RETURN(
      base::HostMapping pages,
      base::HostMapping::CreateMemfd("pci-config", ConfigStats::kFunctions * kConfigSpaceSize));
  return std::unique_ptr<PciBus>(new PciBus(bus_count, std::move(pages)));
}

absl::StatusOr<PciFunction*> PciBus::AddDevice(const DeviceSpec& spec) {
  PCIVMM_RETURN_IF_ERROR(ValidateDeviceSpec(spec));
  PCIVMM_ASSIGN_OR_RETURN(Segment * seg, SegmentFor(spec));
  const Bdf at{0, static_cast<uint8_t>(spec.slot), static_cast<uint8_t>(spec.function)};
  if (const PciFunction* taken = seg->functions[at.devfn()]) {
    return absl::AlreadyExistsError(
        absl::StrFormat("devices[%s]: %s%s is already taken by %s", spec.name,
                        seg->parent != nullptr ? "behind " + seg->parent->spec().name + ", " : "",
                        at.ToString().substr(3), taken->spec().name));
  }
  const uint32_t index = seg == &root_ ? at.devfn() : next_index_;
  if (index >= ConfigStats::kFunctions) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("devices[%s]: more than %d functions behind ports", spec.name,
                        ConfigStats::kFunctions - 256));
  }
  if (seg != &root_) ++next_index_;
  // Each function's page of the memfd, 4 KiB aligned, lives as long as the bus.
  auto storage = pages_.span().subspan(size_t{index} * kConfigSpaceSize, kConfigSpaceSize);
  auto f = std::make_unique<PciFunction>(spec, storage);
  PciFunction* raw = f.get();
  Place(*seg, spec, std::move(f), index);
  return raw;
}

// Where a function goes: bus 0, or the secondary bus of its parent port, which PCIe allows
// only as one device below a link (PCIe r5.0, 7.3.1) and only ports on a switch's internal bus.
absl::StatusOr<PciBus::Segment*> PciBus::SegmentFor(const DeviceSpec& spec) {
  if (spec.parent.empty()) return &root_;
  for (const auto& seg : segments_) {
    const DeviceSpec& p = seg->parent->spec();
    if (p.name != spec.parent) continue;
    if (p.port == PortKind::kSwitchUpstream && spec.port != PortKind::kSwitchDownstream) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "devices[%s].parent: %s is a switch upstream port; only its downstream ports sit "
          "behind it",
          spec.name, p.name));
    }
    if (p.port != PortKind::kSwitchUpstream && spec.slot != 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "devices[%s].slot: %d: behind the %s %s only device 0 exists (PCIe r5.0, 7.3.1)",
          spec.name, spec.slot, PortKindName(p.port), p.name));
    }
    if (spec.port == PortKind::kSwitchDownstream && p.port != PortKind::kSwitchUpstream) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "devices[%s].parent: %s is a %s; a switch downstream port sits behind an upstream port",
          spec.name, p.name, PortKindName(p.port)));
    }
    return seg.get();
  }
  return absl::NotFoundError(absl::StrFormat(
      "devices[%s].parent: no port named %s was added before it", spec.name, spec.parent));
}

void PciBus::Place(Segment& seg, const DeviceSpec& spec, std::unique_ptr<PciFunction> f,
                   uint32_t index) {
  const uint16_t devfn =
      Bdf{0, static_cast<uint8_t>(spec.slot), static_cast<uint8_t>(spec.function)}.devfn();
  PciFunction* raw = f.get();
  raw->SetParent(seg.parent);
  seg.functions[devfn] = raw;
  seg.index[devfn] = index;
  owned_.push_back(std::move(f));
  // PCI 3.0, 6.2.1: header type bit 7 says the device has more functions than function 0.
  const size_t fn0 = devfn & 0xF8u;
  if (devfn != fn0 && seg.functions[fn0] != nullptr) seg.functions[fn0]->SetMultiFunction();
  for (size_t other = fn0 + 1; devfn == fn0 && other < fn0 + 8; ++other) {
    if (seg.functions[other] != nullptr) raw->SetMultiFunction();
  }
  if (raw->is_bridge()) {
    segments_.push_back(std::make_unique<Segment>());
    segments_.back()->parent = raw;
    seg.bridges.emplace_back(raw, segments_.back().get());
  }
}

PciBus::Routed PciBus::Route(Bdf bdf) const {
  if (bdf.device > 31 || bdf.function > 7) return {nullptr, ConfigStats::kNoFunction};
  if (bdf.bus == 0) return {root_.functions[bdf.devfn()], bdf.devfn()};
  return RouteBelow(root_, bdf);
}

// PCI-to-PCI Bridge Architecture 1.2, 3.2.5.3-5: a bridge claims a Type 1 configuration
// request whose bus number is in [secondary, subordinate]; for its secondary bus it converts
// the request to Type 0 there, for the buses above it passes it on as Type 1. PCIe r5.0,
// 7.3.1: a Downstream Port (a root port or a switch's downstream port) sends a Type 0 request
// on its link only for Device Number 0 (no ARI here); the other devices do not exist.
PciBus::Routed PciBus::RouteBelow(const Segment& seg, Bdf bdf) {
  for (const auto& [bridge, below] : seg.bridges) {
    BridgeRegisters r;
    r.buses = bridge->Read(bridge::kPrimaryBus, 4);
    const BridgeBuses buses = DecodeBridgeBuses(r);
    if (!buses.Forwards(bdf.bus)) continue;
    if (bdf.bus != buses.secondary) return RouteBelow(*below, bdf);
    const bool link = bridge->spec().port != PortKind::kSwitchUpstream;
    PciFunction* f = link && bdf.device != 0 ? nullptr : below->functions[bdf.devfn()];
    return {f, f != nullptr ? below->index[bdf.devfn()] : ConfigStats::kNoFunction};
  }
  return {nullptr, ConfigStats::kNoFunction};
}

PciFunction* PciBus::Find(Bdf bdf) const { return Route(bdf).function; }

std::vector<PciFunction*> PciBus::functions() const {
  std::vector<PciFunction*> out;
  for (PciFunction* f : root_.functions) {
    if (f != nullptr) out.push_back(f);
  }
  for (const auto& seg : segments_) {
    for (PciFunction* f : seg->functions) {
      if (f != nullptr) out.push_back(f);
    }
  }
  return out;
}

uint32_t PciBus::IndexOf(const PciFunction& f) const {
  for (const Segment* seg : AllSegments()) {
    for (size_t d = 0; d < seg->functions.size(); ++d) {
      if (seg->functions[d] == &f) return seg->index[d];
    }
  }
  return ConfigStats::kNoFunction;
}

std::vector<PciFunction*> PciBus::ChildrenOf(const PciFunction* bridge) const {
  std::vector<PciFunction*> out;
  for (const Segment* seg : AllSegments()) {
    if (seg->parent != bridge) continue;
    for (PciFunction* f : seg->functions) {
      if (f != nullptr) out.push_back(f);
    }
  }
  return out;
}

std::optional<Bdf> PciBus::AddressOf(const PciFunction& f) const {
  const Bdf at = f.address();
  if (Find(at) != &f) return std::nullopt;  // unnumbered, or a bridge above does not forward
  return at;
}

std::vector<const PciBus::Segment*> PciBus::AllSegments() const {
  std::vector<const Segment*> out{&root_};
  for (const auto& seg : segments_) out.push_back(seg.get());
  return out;
}

void PciBus::Trace(ConfigPath path, mmio::Direction dir, Bdf bdf, uint32_t index, uint16_t reg,
                   uint8_t width, uint32_t value, int vcpu) {
  stats_.Count(path, dir, index, reg);
  if (profile_ != nullptr) {
    profile_->MarkSpan(base::BootPhase::kFirstConfigAccess, base::BootPhase::kLastConfigAccess);
  }
  if (ConfigTracer* t = tracer_.load(std::memory_order_acquire)) {
    t->OnConfigAccess({path, dir, bdf, reg, width, value, vcpu});
  }
}

uint32_t PciBus::Read(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, int vcpu) {
  if (!ConfigSpace::ValidAccess(reg, width)) {
    stats_.CountMalformed(path);
    PCIVMM_LOG_GUEST("pci: malformed %s config read %s+%#x width %d", ConfigPathName(path),
                     bdf.ToString(), reg, width);
    return AllOnes(width);
  }
  // PCI 3.0, 6.1: reads of a function that does not exist return all 1's.
  const Routed to = Route(bdf);
  const uint32_t value = to.function != nullptr ? to.function->Read(reg, width) : AllOnes(width);
  Trace(path, mmio::Direction::kRead, bdf, to.index, reg, width, value, vcpu);
  return value;
}

void PciBus::Write(ConfigPath path, Bdf bdf, uint16_t reg, uint8_t width, uint32_t value,
                   int vcpu) {
  if (!ConfigSpace::ValidAccess(reg, width)) {
    stats_.CountMalformed(path);
    PCIVMM_LOG_GUEST("pci: malformed %s config write %s+%#x width %d dropped", ConfigPathName(path),
                     bdf.ToString(), reg, width);
    return;
  }
  // Traced first: the write's event precedes the mapping events that applying it causes.
  const Routed to = Route(bdf);
  Trace(path, mmio::Direction::kWrite, bdf, to.index, reg, width, value, vcpu);
  if (to.function == nullptr) return;
  to.function->Write(reg, width, value);
  if (routing_ != nullptr && to.function->is_bridge() && TouchesBusNumbers(reg, width)) {
    routing_->OnRoutingChanged();
  }
}

}  // namespace pcivmm::pci
