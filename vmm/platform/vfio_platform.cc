#include "vmm/platform/vfio_platform.h"

#include <chrono>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"
#include "vmm/boot/acpi_tables.h"

namespace pcivmm::platform {
namespace {

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

int NextFreeSlot(const pci::PciBus& bus) {
  int slot = 1;
  while (slot < 32 && bus.Find({0, static_cast<uint8_t>(slot), 0}) != nullptr) ++slot;
  return slot;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VfioPlatform>> VfioPlatform::Open(
    const std::vector<VfioDeviceConfig>& devices, pci::PciBus& bus, const vfio::VfioPaths& paths) {
  std::unique_ptr<VfioPlatform> v(new VfioPlatform());
  if (devices.empty()) return v;
  const uint64_t t0 = NowNs();
  PCIVMM_ASSIGN_OR_RETURN(v->container_, vfio::VfioContainer::Open(paths));
  for (const VfioDeviceConfig& c : devices) {
    PCIVMM_ASSIGN_OR_RETURN(auto device, vfio::VfioDevice::Open(*v->container_, c.host_address));
    vfio::PassthroughOptions o{c.name, c.slot != 0 ? c.slot : NextFreeSlot(bus), c.forward_msi,
                               c.config_fast_path, c.mmap_bars};
    PCIVMM_ASSIGN_OR_RETURN(auto function, vfio::PassthroughFunction::Create(*device, bus, o));
    v->devices_.push_back(std::move(device));
    v->functions_.push_back(std::move(function));
  }
  v->timings_.open_ns = NowNs() - t0;
  return v;
}

VfioPlatform::~VfioPlatform() { functions_.clear(); }

absl::Status VfioPlatform::Activate(Machine& machine, pci::BarMapper& mapper) {
  if (functions_.empty()) return absl::OkStatus();
  const uint64_t t0 = NowNs();
  for (const kvm::GuestMemory::Region& r : machine.memory().regions()) {
    PCIVMM_RETURN_IF_ERROR(container_->MapDma(r.gpa.base(), r.host, r.gpa.size()));
  }
  timings_.dma_map_ns = NowNs() - t0;
  if (machine.pc_platform()) router_ = std::make_unique<KvmIrqRouter>(machine.vm());
  for (auto& f : functions_) {
    const uint32_t pin = f->function().Read(pci::cfg::kInterruptPin, 1);
    std::optional<uint32_t> gsi;
    if (pin >= 1 && pin <= 4) {
      gsi = boot::PciIntxGsi(static_cast<uint32_t>(f->function().spec().slot), pin - 1);
    }
    PCIVMM_RETURN_IF_ERROR(f->Activate(machine.mmio(), machine.pio(), mapper, router_.get(), gsi));
  }
  return absl::OkStatus();
}

std::string FormatVfioDevices(const VfioPlatform& vfio) {
  std::string out;
  for (const auto& f : vfio.functions()) {
    const pci::DeviceSpec& s = f->function().spec();
    const vfio::PassthroughFunction::Counters c = f->counters();
    absl::StrAppendFormat(
        &out,
        "vfio %s -> 00:%02x.%d: config device reads %d writes %d owned-only writes %d; "
        "trapped BAR reads %d writes %d dropped %d; errors %d; MSI enables %d; real decode "
        "write %dns\n",
        f->device().name(), s.slot, s.function, c.config_device_reads, c.config_device_writes,
        c.config_owned_writes, c.bar_reads, c.bar_writes, c.bar_dropped, c.device_errors,
        c.msi_enables, f->real_decode_writes().sum_ns);
  }
  return out;
}

}  // namespace pcivmm::platform
