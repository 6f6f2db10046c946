#include "vmm/platform/linux_vm.h"

#include "vmm/base/status_macros.h"

namespace pcivmm::platform {

absl::StatusOr<std::unique_ptr<LinuxVm>> LinuxVm::Create(LinuxVmConfig config) {
  std::unique_ptr<LinuxVm> vm(new LinuxVm);
  config.machine.pc_platform = true;
  PCIVMM_ASSIGN_OR_RETURN(vm->machine_, Machine::Create(config.machine));
  if (config.on_boot) vm->machine_->boot_marker().SetListener(std::move(config.on_boot));
  PCIVMM_ASSIGN_OR_RETURN(vm->devices_,
                          PcDevices::Attach(*vm->machine_, std::move(config.devices)));
  PCIVMM_ASSIGN_OR_RETURN(vm->pci_, PciPlatform::Attach(*vm->machine_, config.pci));
  PCIVMM_RETURN_IF_ERROR(LoadLinuxGuest(*vm->machine_, *vm->pci_, config.boot));
  return vm;
}

}  // namespace pcivmm::platform
