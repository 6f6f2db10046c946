#include "vmm/linux_vm.h"

#include "vmm/base/status_macros.h"
#include "vmm/platform_layout.h"

namespace pcivmm {

absl::StatusOr<std::unique_ptr<LinuxVm>> LinuxVm::Create(LinuxVmConfig config) {
  std::unique_ptr<LinuxVm> vm(new LinuxVm);
  config.machine.pc_platform = true;
  const uint64_t start_ns = MonotonicNowNs();
  PCIVMM_ASSIGN_OR_RETURN(vm->machine_, Machine::Create(config.machine));
  vm->boot_marker_ = std::make_shared<BootMarker>(start_ns, std::move(config.on_boot));
  PCIVMM_RETURN_IF_ERROR(
      vm->machine_->pio().Register(layout::kBootMarkerPort, 1, vm->boot_marker_).status());
  PCIVMM_ASSIGN_OR_RETURN(vm->devices_,
                          PcDevices::Attach(*vm->machine_, std::move(config.devices)));
  PCIVMM_ASSIGN_OR_RETURN(vm->pci_, PciPlatform::Attach(*vm->machine_, config.pci));
  PCIVMM_RETURN_IF_ERROR(LoadLinuxGuest(*vm->machine_, *vm->pci_, config.boot));
  return vm;
}

}  // namespace pcivmm
