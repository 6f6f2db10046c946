// Entry state for freestanding test guests: 64-bit long mode, identity-mapped low 512 GiB.
#ifndef PCIVMM_VMM_KVM_LONG_MODE_H_
#define PCIVMM_VMM_KVM_LONG_MODE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm.h"

namespace pcivmm::kvm {

// Low-RAM layout of the boot structures (below the 0x7_0000 stack, above the real-mode IVT).
inline constexpr uint64_t kBootGdtAddr = 0x500;
inline constexpr uint64_t kBootPml4Addr = 0x1000;
inline constexpr uint64_t kBootPdptAddr = 0x2000;
inline constexpr uint64_t kBootPdAddr = 0x3000;  // four page directories, 0x3000..0x6FFF
inline constexpr uint64_t kBootStructuresEnd = kBootPdAddr + 4 * uint64_t{0x1000};
inline constexpr uint64_t kIdentityMappedBytes = 512ull << 30;

// Writes the GDT and page tables that identity-map [0, 512 GiB): 2 MiB pages below 4 GiB
// (RAM, the PCI hole, the ECAM window, the APICs), 1 GiB pages above (64-bit BARs; the vCPU
// gets KVM's supported CPUID, which carries 1 GiB-page support).
absl::Status WriteBootTables(const GuestMemory& memory);

struct LongModeEntry {
  uint64_t rip;
  uint64_t rsp;
  uint64_t arg0;  // in rdi: the first argument of the guest's main()
  uint64_t arg1;  // in rsi
};

// Puts a vCPU in 64-bit mode with paging on (CR3 = the tables above) at `entry`.
absl::Status EnterLongMode(int vcpu_fd, const LongModeEntry& entry);

// Gives the vCPU the CPUID the host KVM supports (needed, e.g., for the guest to use 1 GiB
// pages or for Linux to find its features), with the hypervisor bit and APIC ID = index.
absl::Status SetSupportedCpuid(const Kvm& kvm, int vcpu_fd, int vcpu_index);

// The guest-physical address width KVM reports (CPUID 0x8000_0008 EAX[7:0]).
absl::StatusOr<int> GuestPhysBits(const Kvm& kvm);

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_LONG_MODE_H_
