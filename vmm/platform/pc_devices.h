// The legacy PC devices a directly booted Linux guest expects, on the machine's port bus:
// COM1 (16550A, IRQ 4 into the in-kernel irqchip), the CMOS/RTC, the ACPI fixed hardware
// (power-off and reset end the VM) and the i8042's reset line.
#ifndef PCIVMM_VMM_PLATFORM_PC_DEVICES_H_
#define PCIVMM_VMM_PLATFORM_PC_DEVICES_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "vmm/devices/serial_uart.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/x86_platform.h"

namespace pcivmm::platform {

struct PcDevicesConfig {
  devices::SerialUart::Sink console;  // COM1's output; nullptr: kept only in the UART's tail
};

class PcDevices {
 public:
  // `machine` must have been created with MachineConfig::pc_platform and outlive this.
  static absl::StatusOr<std::unique_ptr<PcDevices>> Attach(Machine& machine,
                                                           PcDevicesConfig config);

  devices::SerialUart& uart() { return *uart_; }

  // A guest that panicked (its console says so) and then reset or triple-faulted has
  // crashed: the reason gets kExitStatusGuestCrash and the panic line.
  kvm::StopReason ExplainStop(kvm::StopReason reason) const;

 private:
  explicit PcDevices(Machine& machine);
  absl::Status Register(PcDevicesConfig config);
  void OnReset();

  Machine& machine_;
  KvmIrqLine com1_irq_;
  KvmIrqLine sci_irq_;
  std::shared_ptr<devices::SerialUart> uart_;
};

// The line of a Linux console that carries its panic message ("Kernel panic - not
// syncing: ..."), if there is one.
std::optional<std::string> PanicLine(std::string_view console);

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_PC_DEVICES_H_
