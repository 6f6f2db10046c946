// A Linux guest VM: a PC-platform Machine, its PCI segment, the legacy PC devices and the
// loaded kernel, assembled in the one order that works (the irqchip before the vCPUs, the
// devices before the BARs are assigned, ACPI from the final PCI windows).
#ifndef PCIVMM_VMM_PLATFORM_LINUX_VM_H_
#define PCIVMM_VMM_PLATFORM_LINUX_VM_H_

#include <memory>

#include "absl/status/statusor.h"
#include "vmm/devices/boot_marker.h"
#include "vmm/platform/linux_boot.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pc_devices.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm::platform {

struct LinuxVmConfig {
  MachineConfig machine;  // pc_platform is forced on
  PciConfig pci;
  LinuxBootConfig boot;
  PcDevicesConfig devices;
  devices::BootMarker::Listener
      on_boot;  // optional, called when the guest's init writes the marker
};

class LinuxVm {
 public:
  static absl::StatusOr<std::unique_ptr<LinuxVm>> Create(LinuxVmConfig config);

  // Runs until the guest powers off, resets or fails; a panic is reported as a crash.
  kvm::StopReason Run() { return devices_->ExplainStop(machine_->Run()); }

  Machine& machine() { return *machine_; }
  PciPlatform& pci() { return *pci_; }
  PcDevices& devices() { return *devices_; }
  const devices::BootMarker& boot_marker() const { return machine_->boot_marker(); }

 private:
  LinuxVm() = default;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<PcDevices> devices_;
  std::unique_ptr<PciPlatform> pci_;
};

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_LINUX_VM_H_
