// What memory slots cost the host kernel, checked before a slot is made. KVM keeps per-slot
// metadata proportional to the slot's size, which pcivmm never sees in its own RSS:
//
// - Shadow paging (PVM; and any KVM we cannot classify) allocates reverse maps for every slot
//   at creation (arch/x86/kvm/x86.c, kvm_alloc_memslot_metadata): 8 bytes per 4 KiB page,
//   plus 8 per 2 MiB and per 1 GiB page, plus lpage_info (4 bytes per 2 MiB and per 1 GiB
//   page): ~2 MiB per GiB of slot. 31 x 1 TiB of BARs would cost ~62 GiB of kernel memory.
// - Hardware KVM with TDP (EPT/NPT) allocates reverse maps only once shadow paging is needed
//   (a nested guest); a slot costs its lpage_info, ~2 KiB per GiB.
//
// pcivmm refuses a configuration whose slots (guest RAM and every memory BAR that may be
// mapped) would cost more than half of the host's available memory (MemAvailable).
#ifndef PCIVMM_VMM_PLATFORM_SLOT_BUDGET_H_
#define PCIVMM_VMM_PLATFORM_SLOT_BUDGET_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/kvm/kvm_flavour.h"

namespace pcivmm::platform {

// Host kernel bytes per GiB of memory slot under `flavour` (the model above).
uint64_t SlotMetadataBytesPerGib(kvm::KvmFlavour flavour);

// OK when `slot_bytes` of slots cost at most half of `mem_available` bytes; ResourceExhausted
// naming the sizes, the model and the way out otherwise.
absl::Status CheckSlotBudget(uint64_t slot_bytes, kvm::KvmFlavour flavour, uint64_t mem_available);

// MemAvailable from /proc/meminfo (or `meminfo`), in bytes.
absl::StatusOr<uint64_t> HostMemAvailable(const char* meminfo = "/proc/meminfo");

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_SLOT_BUDGET_H_
