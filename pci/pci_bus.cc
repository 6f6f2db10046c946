#include "pci/pci_bus.h"

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::pci {

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
  const Bdf bdf{0, static_cast<uint8_t>(spec.slot), static_cast<uint8_t>(spec.function)};
  auto& entry = bus0_[bdf.devfn()];
  if (entry) {
    return absl::AlreadyExistsError(absl::StrFormat("devices[%s]: %s is already taken by %s",
                                                    spec.name, bdf.ToString(), entry->spec().name));
  }
  // Each function's page of the memfd, 4 KiB aligned, lives as long as the bus.
  auto storage = pages_.span().subspan(size_t{bdf.devfn()} * kConfigSpaceSize, kConfigSpaceSize);
  entry = std::make_unique<PciFunction>(spec, storage);
  // PCI 3.0, 6.2.1: header type bit 7 says the device has more functions than function 0.
  if (bdf.function != 0 && bus0_[bdf.devfn() & ~7u]) bus0_[bdf.devfn() & ~7u]->SetMultiFunction();
  if (bdf.function == 0) {
    for (int f = 1; f < 8; ++f) {
      if (bus0_[bdf.devfn() + static_cast<unsigned>(f)]) entry->SetMultiFunction();
    }
  }
  return entry.get();
}

PciFunction* PciBus::Find(Bdf bdf) const {
  if (bdf.bus != 0 || bdf.device > 31 || bdf.function > 7) return nullptr;
  return bus0_[bdf.devfn()].get();
}

std::vector<PciFunction*> PciBus::functions() const {
  std::vector<PciFunction*> out;
  for (const auto& f : bus0_) {
    if (f) out.push_back(f.get());
  }
  return out;
}

void PciBus::Trace(ConfigPath path, mmio::Direction dir, Bdf bdf, uint16_t reg, uint8_t width,
                   uint32_t value, int vcpu) {
  stats_.Count(path, dir, bdf, reg);
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
  const PciFunction* f = Find(bdf);
  const uint32_t value = f != nullptr ? f->Read(reg, width) : AllOnes(width);
  Trace(path, mmio::Direction::kRead, bdf, reg, width, value, vcpu);
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
  Trace(path, mmio::Direction::kWrite, bdf, reg, width, value, vcpu);
  if (PciFunction* f = Find(bdf)) f->Write(reg, width, value);
}

}  // namespace pcivmm::pci
