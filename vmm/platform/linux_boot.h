// Direct Linux boot of a Machine created with MachineConfig::pc_platform.
#ifndef PCIVMM_VMM_PLATFORM_LINUX_BOOT_H_
#define PCIVMM_VMM_PLATFORM_LINUX_BOOT_H_

#include <string>

#include "absl/status/status.h"
#include "vmm/kvm/kvm_flavour.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm::platform {

// The command line used when none is given: the console on COM1 (the only UART: no probing
// of COM2..4), reboot on panic (so the VMM can report it), /dev/mem open for BAR checks.
inline constexpr char kDefaultLinuxCmdline[] =
    "console=ttyS0 8250.nr_uarts=1 iomem=relaxed panic=-1 quiet";

struct LinuxBootConfig {
  std::string kernel_path;  // a bzImage
  std::string initrd_path;  // optional
  std::string cmdline;
  // The kernel is built to run as a PVM guest: boot it on a PVM /dev/kvm too.
  bool pvm_guest_kernel = false;
};

// OK unless `kvm` is PVM and the kernel is not declared a PVM guest: FailedPrecondition naming
// PVM, why it cannot work and the way out (the nested lab, or --pvm-guest-kernel).
absl::Status RequireLinuxCapableKvm(const kvm::KvmClass& kvm, const LinuxBootConfig& boot);

// Refuses an unmodified kernel on PVM (RequireLinuxCapableKvm), then writes the ACPI tables (MCFG
// and the PCI host bridge described from `pci`) into the firmware area, then the kernel, initrd,
// command line and a zero page with the e820 map. vCPU 0 enters the kernel's 64-bit entry; the
// others wait in the in-kernel LAPIC for the guest's INIT/SIPI.
absl::Status LoadLinuxGuest(Machine& machine, const PciPlatform& pci,
                            const LinuxBootConfig& config);

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_LINUX_BOOT_H_
