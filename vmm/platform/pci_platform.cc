#include "vmm/platform/pci_platform.h"

#include "absl/strings/str_format.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/status_macros.h"
#include "vmm/kvm/long_mode.h"
#include "vmm/platform/slot_budget.h"

namespace pcivmm {

namespace {

// Guest RAM and every memory BAR (each may become a slot; ROMs never do), against what the
// host can carry (slot_budget.h), before the mapper makes any slot.
absl::Status CheckSlotCost(Machine& machine, const PciBus& bus) {
  uint64_t bytes = machine.memory().size();
  for (const PciFunction* f : bus.functions()) {
    for (const BarSpec& b : f->spec().bars) bytes += b.kind == BarKind::kIo ? 0 : b.size;
  }
  PCIVMM_ASSIGN_OR_RETURN(const uint64_t available, HostMemAvailable());
  return CheckSlotBudget(bytes, machine.kvm().kind().flavour, available);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PciPlatform>> PciPlatform::Attach(Machine& machine,
                                                                 const PciConfig& config) {
  std::unique_ptr<PciPlatform> p(new PciPlatform());
  PCIVMM_ASSIGN_OR_RETURN(p->bus_, PciBus::Create(config.bus_count));
  PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(HostBridgeDevice()).status());
  for (const DeviceSpec& d : config.devices) PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(d).status());
  PCIVMM_ASSIGN_OR_RETURN(p->vfio_, VfioPlatform::Open(config.vfio, *p->bus_, config.vfio_paths));
  PCIVMM_ASSIGN_OR_RETURN(const int phys_bits, GuestPhysBits(machine.kvm()));
  PCIVMM_ASSIGN_OR_RETURN(p->windows_, DefaultPciWindows(machine.memory().end(), phys_bits));
  PCIVMM_RETURN_IF_ERROR(AssignPciResources(*p->bus_, *p->windows_, config.hand_off));
  PCIVMM_RETURN_IF_ERROR(CheckSlotCost(machine, *p->bus_));
  p->pio_ = std::make_shared<PioConfigAccess>(p->bus_.get());
  p->pio_->set_enabled(config.pio_enabled);
  PCIVMM_RETURN_IF_ERROR(machine.pio().Register(kPioConfigAddressPort, 8, p->pio_).status());
  p->ecam_ = std::make_shared<EcamConfigAccess>(p->bus_.get());
  PCIVMM_ASSIGN_OR_RETURN(p->ecam_region_,
                          machine.mmio().Register(kEcamBase, p->ecam_->window_size(), p->ecam_));
  BarMapper::Options mo{config.bar_policy, config.bar_cost,
                        ReservedForBars(machine.memory(), config.bus_count), phys_bits};
  p->mapper_ = std::make_unique<BarMapper>(machine.memslots(), std::move(mo));
  for (PciFunction* f : p->bus_->functions()) {
    if (!f->spec().passthrough) PCIVMM_RETURN_IF_ERROR(p->mapper_->Attach(*f));
  }
  PCIVMM_RETURN_IF_ERROR(p->vfio_->Activate(machine, *p->mapper_));
  PCIVMM_ASSIGN_OR_RETURN(p->fast_path_,
                          EcamFastPath::Create(*p->bus_, machine.memslots(), kEcamBase));
  if (config.ecam_fast_path) PCIVMM_RETURN_IF_ERROR(p->fast_path_->Enable());
  return p;
}

namespace {

const char* KindName(BarKind k) {
  switch (k) {
    case BarKind::kIo:
      return "io";
    case BarKind::kMem32:
      return "mem32";
    case BarKind::kMem64:
      return "mem64";
  }
  return "?";
}

}  // namespace

std::string FormatPciDevices(const PciBus& bus) {
  std::string out;
  for (const PciFunction* f : bus.functions()) {
    const DeviceSpec& s = f->spec();
    const Bdf bdf{0, static_cast<uint8_t>(s.slot), static_cast<uint8_t>(s.function)};
    absl::StrAppendFormat(&out, "%s %04x:%04x class %06x %s\n", bdf.ToString(), s.vendor_id,
                          s.device_id, s.class_code, s.name);
    for (const BarSpec& b : s.bars) {
      absl::StrAppendFormat(&out, "    BAR%d %-5s%s %#14x size %#x\n", b.index, KindName(b.kind),
                            b.prefetchable ? " pref" : "     ", f->BarAddress(b), b.size);
    }
    if (s.rom_size != 0) {
      absl::StrAppendFormat(&out, "    ROM            %#14x size %#x\n", f->RomAddress(),
                            s.rom_size);
    }
  }
  return out;
}

std::vector<AddressRange> PlatformReserved(int bus_count) {
  constexpr uint64_t kApicToFourGiB = kHighRamBase - layout::kIoapicAddr;
  return {*AddressRange::Make(layout::kAcpiBase, layout::kAcpiSize),
          *AddressRange::Make(kEcamBase, kEcamBytesPerBus * static_cast<uint64_t>(bus_count)),
          *AddressRange::Make(layout::kIoapicAddr, kApicToFourGiB)};
}

std::vector<AddressRange> ReservedForBars(const GuestMemory& memory, int bus_count) {
  std::vector<AddressRange> r = PlatformReserved(bus_count);
  for (const GuestMemory::Region& region : memory.regions()) r.push_back(region.gpa);
  return r;
}

uint64_t ConfigExitCount(const ExitStats& stats, const PciPlatform& pci) {
  uint64_t n = stats.mmio(pci.ecam_region(), Direction::kRead) +
               stats.mmio(pci.ecam_region(), Direction::kWrite);
  for (uint16_t p = kPioConfigAddressPort; p < kPioConfigAddressPort + 8; ++p) {
    n += stats.pio(p, Direction::kRead) + stats.pio(p, Direction::kWrite);
  }
  return n;
}

std::string FormatBarMapping(const PciBus& bus, const BarMapper& mapper) {
  std::string out = absl::StrFormat("bar mapping (%s):\n", MapPolicyName(mapper.policy()));
  for (const PciFunction* f : bus.functions()) {
    for (const BarSpec& b : f->spec().bars) {
      if (b.kind == BarKind::kIo) continue;
      const BarMapStats s = mapper.stats(*f, b.index);
      absl::StrAppendFormat(
          &out,
          "  %s BAR%d maps %d unmaps %d moves %d conflicts %d ioctl n=%d min %dns max %dns "
          "sum %dns modelled %dns\n",
          f->spec().name, b.index, s.maps, s.unmaps, s.moves, s.conflicts, s.ioctl.count,
          s.ioctl.min_ns, s.ioctl.max_ns, s.ioctl.sum_ns, s.modelled_ns);
    }
  }
  return out;
}

std::string FormatConfigStats(const ConfigStats& stats) {
  std::string out = "config accesses by path:\n";
  for (ConfigPath p : {ConfigPath::kPio, ConfigPath::kEcam, ConfigPath::kHost}) {
    absl::StrAppendFormat(&out, "  %-5s read %10d write %10d malformed %d\n", ConfigPathName(p),
                          stats.accesses(p, Direction::kRead), stats.accesses(p, Direction::kWrite),
                          stats.malformed(p));
  }
  return out;
}

}  // namespace pcivmm
