#include "pci/vfio/passthrough_function.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_format.h"
#include "pci/le_bytes.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::vfio {

absl::StatusOr<pci::DeviceSpec> PassthroughSpec(const PassthroughDevice& device,
                                                const PassthroughOptions& options) {
  std::array<uint8_t, 64> h{};
  if (device.region(kRegionConfig).size < h.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s: config region is %d bytes", device.name(), device.region(kRegionConfig).size));
  }
  PCIVMM_RETURN_IF_ERROR(device.Read(kRegionConfig, 0, absl::MakeSpan(h)));
  auto le = [&h](size_t at, size_t n) {
    return pci::LoadLe(absl::MakeConstSpan(h).subspan(at, n));
  };
  if ((h[pci::cfg::kHeaderType] & 0x7F) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s: header type %#x: only type-0 functions (not bridges) can be passed through",
        device.name(), h[pci::cfg::kHeaderType]));
  }
  pci::DeviceSpec s;
  s.name = options.name.empty() ? "vfio-" + device.name() : options.name;
  s.slot = options.slot;
  s.vendor_id = static_cast<uint16_t>(le(pci::cfg::kVendorId, 2));
  s.device_id = static_cast<uint16_t>(le(pci::cfg::kDeviceId, 2));
  s.revision = h[pci::cfg::kRevisionId];
  s.class_code = le(pci::cfg::kClassCode, 3);
  s.subsystem_vendor_id = static_cast<uint16_t>(le(pci::cfg::kSubsystemVendorId, 2));
  s.subsystem_id = static_cast<uint16_t>(le(pci::cfg::kSubsystemId, 2));
  s.pcie = s.power_management = s.msi = s.msix = false;
  s.ecam_fast_path = options.config_fast_path;
  s.passthrough = true;
  // PCI 3.0, 6.2.5.1: bit 0 set is an I/O BAR; for memory, bits 2:1 = 10b is a 64-bit BAR
  // (it takes the next register too) and bit 3 is prefetchable.
  for (int i = 0; i < 6; ++i) {
    const uint64_t size = device.region(i).size;
    const uint32_t reg = le(pci::BarOffset(i), 4);
    if (size == 0) continue;
    pci::BarSpec b{i, pci::BarKind::kMem32, size, false};
    if ((reg & pci::bar_bits::kIoSpace) != 0) {
      b.kind = pci::BarKind::kIo;
    } else {
      b.kind = (reg & 0x6) == pci::bar_bits::kMem64 ? pci::BarKind::kMem64 : pci::BarKind::kMem32;
      b.prefetchable = (reg & pci::bar_bits::kPrefetchable) != 0;
    }
    s.bars.push_back(b);
    if (b.kind == pci::BarKind::kMem64) ++i;
  }
  PCIVMM_RETURN_IF_ERROR(pci::ValidateDeviceSpec(s));
  return s;
}

absl::StatusOr<std::unique_ptr<PassthroughFunction>> PassthroughFunction::Create(
    PassthroughDevice& device, pci::PciBus& bus, PassthroughOptions options) {
  PCIVMM_ASSIGN_OR_RETURN(pci::DeviceSpec spec, PassthroughSpec(device, options));
  std::unique_ptr<PassthroughFunction> p(new PassthroughFunction(device, std::move(options)));
  PCIVMM_ASSIGN_OR_RETURN(p->function_, bus.AddDevice(spec));
  const auto config_size = static_cast<uint16_t>(
      std::min<uint64_t>(device.region(kRegionConfig).size, pci::kConfigSpaceSize));
  p->config_ = std::make_unique<PassthroughConfig>(device, config_size);
  p->config_->Init(*p->function_, p->options_.forward_msi);
  p->bars_ = std::make_unique<PassthroughBars>(*p->function_, device);
  p->interrupts_ = std::make_unique<PassthroughInterrupts>(
      device, *p->function_, p->config_->msi_capability(), p->config_->msi_64bit());
  p->function_->SetPassthrough(p.get());
  return p;
}

PassthroughFunction::~PassthroughFunction() {
  interrupts_.reset();  // INTx off and unrouted, then MSI
  bars_.reset();        // the trapping ranges leave the buses
  if (function_ != nullptr) function_->SetPassthrough(nullptr);
}

absl::Status PassthroughFunction::Activate(mmio::Bus& mmio, mmio::Bus& pio, pci::BarMapper& mapper,
                                           InterruptRouter* router,
                                           std::optional<uint32_t> intx_gsi) {
  PCIVMM_RETURN_IF_ERROR(config_->EnableRealDecode(function_->spec()));
  const bool has_pin = (ReadDevice(pci::cfg::kInterruptPin, 1) & 0xFF) != 0;
  PCIVMM_RETURN_IF_ERROR(interrupts_->Activate(router, intx_gsi, has_pin));
  PCIVMM_RETURN_IF_ERROR(
      bars_->Attach(mmio, pio, mapper, options_.mmap_bars, config_->msix_ranges()));
  if (options_.config_fast_path) {
    for (uint16_t d = 0; d < config_->config_size(); d += 4) function_->MirrorDevice(d);
  }
  return absl::OkStatus();
}

uint32_t PassthroughFunction::DeviceBits(uint16_t dword) const {
  return config_->DeviceBits(dword);
}

uint32_t PassthroughFunction::ReadDevice(uint16_t offset, uint8_t width) const {
  return config_->ReadDevice(offset, width);
}

void PassthroughFunction::OnWrite(uint16_t offset, uint8_t width, uint32_t value) {
  config_->ForwardWrite(offset, width, value);
  if (pci::AccessTouches(offset, width, pci::cfg::kCommand, 2) ||
      pci::AccessTouches(offset, width, pci::cfg::kBar0, 6 * 4)) {
    bars_->Reconcile();
  }
  const uint8_t msi = config_->msi_capability();
  if (msi != 0 && pci::AccessTouches(offset, width, msi, 24)) interrupts_->UpdateMsi();
  if (options_.config_fast_path) Mirror(offset, width);
}

void PassthroughFunction::BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) {
  bars_->Read(bar, offset, data);
}

void PassthroughFunction::BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) {
  bars_->Write(bar, offset, data);
}

void PassthroughFunction::Mirror(uint16_t offset, uint8_t width) {
  (void)width;  // accesses never cross a dword
  function_->MirrorDevice(static_cast<uint16_t>(offset & ~3u));
  function_->MirrorDevice(pci::cfg::kCommand);
}

PassthroughFunction::Counters PassthroughFunction::counters() const {
  const PassthroughConfig::Counters config = config_->counters();
  const PassthroughBars::Counters bars = bars_->counters();
  Counters c;
  c.config_device_reads = config.device_reads;
  c.config_device_writes = config.device_writes;
  c.config_owned_writes = config.owned_writes;
  c.bar_reads = bars.reads;
  c.bar_writes = bars.writes;
  c.bar_dropped = bars.dropped;
  c.device_errors = config.device_errors + bars.device_errors;
  c.msi_enables = interrupts_->msi_enables();
  return c;
}

}  // namespace pcivmm::vfio
