// The KVM side of the x86 PC platform a Linux guest boots on: the in-kernel irqchip (PIC,
// IOAPIC, LAPICs) and PIT, IRQ lines into it, and each vCPU's boot MSRs, LAPIC and CPUID.
#ifndef PCIVMM_VMM_PLATFORM_X86_PLATFORM_H_
#define PCIVMM_VMM_PLATFORM_X86_PLATFORM_H_

#include <cstdint>

#include "absl/status/status.h"
#include "vmm/devices/irq_line.h"
#include "vmm/kvm/kvm.h"

namespace pcivmm::platform {

// KVM's real-mode TSS and identity-map pages (needed on Intel for real mode; harmless on
// AMD): three plus one pages just below the 4 GiB BIOS area, which no BAR may use.
inline constexpr uint64_t kKvmTssAddr = 0xFFFB'D000;
inline constexpr uint64_t kKvmIdentityMapAddr = 0xFFFB'C000;

// Creates the in-kernel PIC+IOAPIC+LAPIC model and the PIT. Must run before any vCPU exists.
absl::Status CreateInKernelIrqchip(const kvm::Vm& vm);

// Sets a vCPU's boot MSRs (SYSCALL/SYSENTER cleared, fast strings, MTRRs on with write-back
// default), FPU state and its LAPIC's LINT0 = ExtINT (the PIC), LINT1 = NMI, as a BIOS does.
absl::Status SetupBootVcpuState(int vcpu_fd);

// A GSI of the in-kernel irqchip, driven with KVM_IRQ_LINE.
class KvmIrqLine : public devices::IrqLine {
 public:
  KvmIrqLine(const kvm::Vm* vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void Set(bool level) override;

 private:
  const kvm::Vm* const vm_;
  const uint32_t gsi_;
};

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_X86_PLATFORM_H_
