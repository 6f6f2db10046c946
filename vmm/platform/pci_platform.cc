#include "vmm/platform/pci_platform.h"

#include "absl/strings/str_format.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/status_macros.h"
#include "vmm/kvm/long_mode.h"
#include "vmm/platform/slot_budget.h"

namespace pcivmm::platform {

namespace {

// Guest RAM and every memory BAR (each may become a slot; ROMs never do), against what the
// host can carry (slot_budget.h), before the mapper makes any slot.
absl::Status CheckSlotCost(Machine& machine, const pci::PciBus& bus) {
  uint64_t bytes = machine.memory().size();
  for (const pci::PciFunction* f : bus.functions()) {
    for (const pci::BarSpec& b : f->spec().bars) bytes += b.kind == pci::BarKind::kIo ? 0 : b.size;
  }
  PCIVMM_ASSIGN_OR_RETURN(const uint64_t available, HostMemAvailable());
  return CheckSlotBudget(bytes, machine.kvm().kind().flavour, available);
}

// The bridges between `f` and bus 0, nearest first.
std::vector<const pci::PciFunction*> Upstream(const pci::PciFunction& f) {
  std::vector<const pci::PciFunction*> out;
  for (const pci::PciFunction* p = f.parent(); p != nullptr; p = p->parent()) {
    out.push_back(p);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PciPlatform>> PciPlatform::Attach(Machine& machine,
                                                                 const PciConfig& config) {
  std::unique_ptr<PciPlatform> p(new PciPlatform());
  PCIVMM_ASSIGN_OR_RETURN(p->bus_, pci::PciBus::Create(config.bus_count));
  PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(pci::HostBridgeDevice()).status());
  for (const pci::DeviceSpec& d : config.devices)
    PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(d).status());
  PCIVMM_ASSIGN_OR_RETURN(p->vfio_, VfioPlatform::Open(config.vfio, *p->bus_, config.vfio_paths));
  PCIVMM_ASSIGN_OR_RETURN(const int phys_bits, kvm::GuestPhysBits(machine.kvm()));
  PCIVMM_ASSIGN_OR_RETURN(p->windows_, pci::DefaultPciWindows(machine.memory().end(), phys_bits));
  PCIVMM_RETURN_IF_ERROR(pci::AssignPciResources(*p->bus_, *p->windows_, config.hand_off));
  PCIVMM_RETURN_IF_ERROR(CheckSlotCost(machine, *p->bus_));
  p->pio_ = std::make_shared<pci::PioConfigAccess>(p->bus_.get());
  p->pio_->set_enabled(config.pio_enabled);
  PCIVMM_RETURN_IF_ERROR(machine.pio().Register(pci::kPioConfigAddressPort, 8, p->pio_).status());
  p->ecam_ = std::make_shared<pci::EcamConfigAccess>(p->bus_.get());
  PCIVMM_ASSIGN_OR_RETURN(
      p->ecam_region_, machine.mmio().Register(pci::kEcamBase, p->ecam_->window_size(), p->ecam_));
  pci::BarMapper::Options mo{config.bar_policy, config.bar_cost,
                             ReservedForBars(machine.memory(), config.bus_count), phys_bits};
  p->mapper_ = std::make_unique<pci::BarMapper>(machine.memslots(), std::move(mo));
  for (pci::PciFunction* f : p->bus_->functions()) {
    if (f->is_bridge()) p->mapper_->WatchBridge(*f);
    if (!f->spec().passthrough) {
      PCIVMM_RETURN_IF_ERROR(p->mapper_->Attach(*f, Upstream(*f)));
    }
  }
  PCIVMM_RETURN_IF_ERROR(p->vfio_->Activate(machine, *p->mapper_));
  PCIVMM_ASSIGN_OR_RETURN(p->fast_path_,
                          pci::EcamFastPath::Create(*p->bus_, machine.memslots(), pci::kEcamBase));
  if (config.ecam_fast_path) PCIVMM_RETURN_IF_ERROR(p->fast_path_->Enable());
  p->bus_->SetBootProfile(&machine.profile());
  machine.profile().Mark(base::BootPhase::kDevicesAttached);
  return p;
}

namespace {

const char* KindName(pci::BarKind k) {
  switch (k) {
    case pci::BarKind::kIo:
      return "io";
    case pci::BarKind::kMem32:
      return "mem32";
    case pci::BarKind::kMem64:
      return "mem64";
  }
  return "?";
}

}  // namespace

std::string FormatPciDevices(const pci::PciBus& bus) {
  std::string out;
  for (const pci::PciFunction* f : bus.functions()) {
    const pci::DeviceSpec& s = f->spec();
    const std::optional<pci::Bdf> bdf = bus.AddressOf(*f);
    absl::StrAppendFormat(
        &out, "%s %04x:%04x class %06x %s%s\n", bdf ? bdf->ToString() : "--:--.-", s.vendor_id,
        s.device_id, s.class_code, s.name,
        s.port != pci::PortKind::kNone ? absl::StrFormat(" (%s)", pci::PortKindName(s.port)) : "");
    if (f->is_bridge()) {
      const pci::BridgeBuses b = pci::DecodeBridgeBuses(f->bridge_registers());
      absl::StrAppendFormat(&out, "    buses %02x..%02x\n", b.secondary, b.subordinate);
    }
    for (const pci::BarSpec& b : s.bars) {
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

std::vector<mmio::AddressRange> PlatformReserved(int bus_count) {
  constexpr uint64_t kApicToFourGiB = kvm::kHighRamBase - base::layout::kIoapicAddr;
  return {*mmio::AddressRange::Make(base::layout::kAcpiBase, base::layout::kAcpiSize),
          *mmio::AddressRange::Make(pci::kEcamBase,
                                    pci::kEcamBytesPerBus * static_cast<uint64_t>(bus_count)),
          *mmio::AddressRange::Make(base::layout::kIoapicAddr, kApicToFourGiB)};
}

std::vector<mmio::AddressRange> ReservedForBars(const kvm::GuestMemory& memory, int bus_count) {
  std::vector<mmio::AddressRange> r = PlatformReserved(bus_count);
  for (const kvm::GuestMemory::Region& region : memory.regions()) r.push_back(region.gpa);
  return r;
}

uint64_t ConfigExitCount(const kvm::ExitStats& stats, const PciPlatform& pci) {
  uint64_t n = stats.mmio(pci.ecam_region(), mmio::Direction::kRead) +
               stats.mmio(pci.ecam_region(), mmio::Direction::kWrite);
  for (uint16_t p = pci::kPioConfigAddressPort; p < pci::kPioConfigAddressPort + 8; ++p) {
    n += stats.pio(p, mmio::Direction::kRead) + stats.pio(p, mmio::Direction::kWrite);
  }
  return n;
}

std::string FormatBarMapping(const pci::PciBus& bus, const pci::BarMapper& mapper) {
  std::string out = absl::StrFormat("bar mapping (%s):\n", pci::MapPolicyName(mapper.policy()));
  for (const pci::PciFunction* f : bus.functions()) {
    for (const pci::BarSpec& b : f->spec().bars) {
      if (b.kind == pci::BarKind::kIo) continue;
      const pci::BarMapStats s = mapper.stats(*f, b.index);
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

std::string FormatConfigStats(const pci::ConfigStats& stats) {
  std::string out = "config accesses by path:\n";
  for (pci::ConfigPath p :
       {pci::ConfigPath::kPio, pci::ConfigPath::kEcam, pci::ConfigPath::kHost}) {
    absl::StrAppendFormat(&out, "  %-5s read %10d write %10d malformed %d\n",
                          pci::ConfigPathName(p), stats.accesses(p, mmio::Direction::kRead),
                          stats.accesses(p, mmio::Direction::kWrite), stats.malformed(p));
  }
  return out;
}

}  // namespace pcivmm::platform
