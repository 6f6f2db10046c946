#include "vmm/platform/linux_boot.h"

#include "absl/strings/str_format.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/read_file.h"
#include "vmm/base/status_macros.h"
#include "vmm/boot/acpi_tables.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/kvm/long_mode.h"

namespace pcivmm::platform {
namespace {

absl::Status WriteAcpiTables(Machine& machine, const PciPlatform& pci) {
  const boot::AcpiPlatform platform{
      .vcpus = machine.vcpu_count(), .bus_count = pci.bus().bus_count(), .windows = pci.windows()};
  PCIVMM_ASSIGN_OR_RETURN(std::vector<uint8_t> tables,
                          boot::BuildAcpiTables(platform, base::layout::kAcpiBase));
  return machine.memory().Write(base::layout::kAcpiBase, tables);
}

// The kernel and the initrd each fit in guest RAM or cannot be loaded at all.
absl::StatusOr<boot::LinuxImages> ReadImages(const LinuxBootConfig& config, uint64_t ram_bytes) {
  boot::LinuxImages images;
  PCIVMM_ASSIGN_OR_RETURN(images.kernel, base::ReadBoundedFile(config.kernel_path, ram_bytes,
                                                               "--kernel", "the guest RAM"));
  if (!config.initrd_path.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(images.initrd, base::ReadBoundedFile(config.initrd_path, ram_bytes,
                                                                 "--initrd", "the guest RAM"));
  }
  images.cmdline = config.cmdline;
  return images;
}

}  // namespace

absl::Status RequireLinuxCapableKvm(const kvm::KvmClass& kvm, const LinuxBootConfig& boot) {
  if (kvm.flavour != kvm::KvmFlavour::kPvm || boot.pvm_guest_kernel) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "--kernel: this /dev/kvm is PVM (%s). An unmodified Linux kernel does not run on PVM: it "
      "hangs after its first serial writes. Boot it in the nested lab, which has hardware KVM: "
      "./dev lab -- <this pcivmm command>; or, if %s is built as a PVM guest, pass "
      "--pvm-guest-kernel",
      kvm.reason, boot.kernel_path));
}

absl::Status LoadLinuxGuest(Machine& machine, const PciPlatform& pci,
                            const LinuxBootConfig& config) {
  PCIVMM_RETURN_IF_ERROR(RequireLinuxCapableKvm(machine.kvm().kind(), config));
  PCIVMM_ASSIGN_OR_RETURN(boot::LinuxImages images, ReadImages(config, machine.memory().size()));
  const std::vector<boot::E820Entry> e820 =
      boot::BuildE820(machine.memory(), PlatformReserved(pci.bus().bus_count()));
  PCIVMM_ASSIGN_OR_RETURN(boot::LinuxEntry entry,
                          boot::LoadLinux(machine.memory(), images, e820, base::layout::kAcpiBase));
  machine.profile().Mark(base::BootPhase::kImagesLoaded);
  PCIVMM_RETURN_IF_ERROR(WriteAcpiTables(machine, pci));
  PCIVMM_RETURN_IF_ERROR(kvm::WriteBootTables(machine.memory()));
  // boot.rst, 64-bit protocol: paging on, the kernel and zero page identity-mapped,
  // interrupts off, "%rsi must hold the base address of the struct boot_params".
  kvm::LongModeEntry boot{entry.rip, base::layout::kBootStackTop, 0, entry.zero_page};
  PCIVMM_RETURN_IF_ERROR(kvm::EnterLongMode(machine.vcpu(0).fd(), boot));
  machine.profile().Mark(base::BootPhase::kFirmwareBuilt);
  return absl::OkStatus();
}

}  // namespace pcivmm::platform
