#include "vmm/pci_platform.h"

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"
#include "vmm/long_mode.h"

namespace pcivmm {

absl::StatusOr<std::unique_ptr<PciPlatform>> PciPlatform::Attach(Machine& machine,
                                                                 const PciConfig& config) {
  std::unique_ptr<PciPlatform> p(new PciPlatform());
  PCIVMM_ASSIGN_OR_RETURN(p->bus_, PciBus::Create(config.bus_count));
  PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(HostBridgeDevice()).status());
  for (const DeviceSpec& d : config.devices) PCIVMM_RETURN_IF_ERROR(p->bus_->AddDevice(d).status());
  PCIVMM_ASSIGN_OR_RETURN(const int phys_bits, GuestPhysBits(machine.kvm()));
  PCIVMM_ASSIGN_OR_RETURN(p->windows_, DefaultPciWindows(machine.memory().end(), phys_bits));
  PCIVMM_RETURN_IF_ERROR(AssignPciResources(*p->bus_, *p->windows_, config.hand_off));
  p->pio_ = std::make_shared<PioConfigAccess>(p->bus_.get());
  p->pio_->set_enabled(config.pio_enabled);
  PCIVMM_RETURN_IF_ERROR(machine.pio().Register(kPioConfigAddressPort, 8, p->pio_).status());
  p->ecam_ = std::make_shared<EcamConfigAccess>(p->bus_.get());
  PCIVMM_ASSIGN_OR_RETURN(p->ecam_region_,
                          machine.mmio().Register(kEcamBase, p->ecam_->window_size(), p->ecam_));
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

uint64_t ConfigExitCount(const ExitStats& stats, const PciPlatform& pci) {
  uint64_t n = stats.mmio(pci.ecam_region(), Direction::kRead) +
               stats.mmio(pci.ecam_region(), Direction::kWrite);
  for (uint16_t p = kPioConfigAddressPort; p < kPioConfigAddressPort + 8; ++p) {
    n += stats.pio(p, Direction::kRead) + stats.pio(p, Direction::kWrite);
  }
  return n;
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
