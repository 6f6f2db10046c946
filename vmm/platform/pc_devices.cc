#include "vmm/platform/pc_devices.h"

#include "absl/strings/str_format.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/i8042.h"
#include "vmm/kvm/exit_dispatcher.h"

namespace pcivmm::platform {
std::optional<std::string> PanicLine(std::string_view console) {
  constexpr std::string_view kPanicMarker = "Kernel panic - not syncing";
  const size_t at = console.rfind(kPanicMarker);
  if (at == std::string_view::npos) return std::nullopt;
  const size_t end = console.find_first_of("\r\n", at);
  return std::string(console.substr(at, end == std::string_view::npos ? end : end - at));
}

PcDevices::PcDevices(Machine& machine)
    : machine_(machine),
      com1_irq_(&machine.vm(), base::layout::kCom1Irq),
      sci_irq_(&machine.vm(), base::layout::kAcpiSciIrq) {}

absl::StatusOr<std::unique_ptr<PcDevices>> PcDevices::Attach(Machine& machine,
                                                             PcDevicesConfig config) {
  std::unique_ptr<PcDevices> d(new PcDevices(machine));
  PCIVMM_RETURN_IF_ERROR(d->Register(std::move(config)));
  return d;
}

absl::Status PcDevices::Register(PcDevicesConfig config) {
  mmio::Bus& pio = machine_.pio();
  devices::SerialUart::Sink sink = [profile = &machine_.profile(),
                                    next = std::move(config.console)](std::string_view bytes) {
    profile->Mark(base::BootPhase::kFirstConsoleByte);
    if (next) next(bytes);
  };
  uart_ = std::make_shared<devices::SerialUart>(&com1_irq_, std::move(sink));
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(base::layout::kCom1Port, devices::SerialUart::kPortCount, uart_).status());
  PCIVMM_RETURN_IF_ERROR(pio.Register(base::layout::kCmosPort, devices::CmosRtc::kPortCount,
                                      std::make_shared<devices::CmosRtc>())
                             .status());
  PCIVMM_RETURN_IF_ERROR(pio.Register(base::layout::kAcpiPm1aEvtPort, devices::AcpiPm1Event::kSize,
                                      std::make_shared<devices::AcpiPm1Event>(&sci_irq_))
                             .status());
  auto power_off = [this] { machine_.RequestStop({0, "guest powered off"}); };
  PCIVMM_RETURN_IF_ERROR(pio.Register(base::layout::kAcpiPm1aCntPort,
                                      devices::AcpiPm1Control::kSize,
                                      std::make_shared<devices::AcpiPm1Control>(power_off))
                             .status());
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(base::layout::kAcpiResetPort, devices::AcpiResetRegister::kSize,
                   std::make_shared<devices::AcpiResetRegister>([this] { OnReset(); }))
          .status());
  auto kbc = std::make_shared<devices::I8042>([this] { OnReset(); });
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(base::layout::kI8042DataPort, 1, devices::I8042::DataPort(kbc)).status());
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(base::layout::kI8042CommandPort, 1, devices::I8042::CommandPort(kbc)).status());
  return absl::OkStatus();
}

void PcDevices::OnReset() { machine_.RequestStop({0, "guest reset (reboot)"}); }

kvm::StopReason PcDevices::ExplainStop(kvm::StopReason reason) const {
  const std::optional<std::string> panic = PanicLine(uart_->output_tail());
  if (!panic) return reason;
  reason.detail = absl::StrFormat("guest crashed: %s (then: %s)", *panic, reason.detail);
  reason.exit_code = kvm::kExitStatusGuestCrash;
  return reason;
}

}  // namespace pcivmm::platform
