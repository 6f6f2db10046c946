// What the VMM process costs in memory beyond guest RAM.
#ifndef PCIVMM_API_HOST_MEMORY_H_
#define PCIVMM_API_HOST_MEMORY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "vmm/guest_memory.h"

namespace pcivmm {

// VmRSS of this process (/proc/self/status), in bytes.
absl::StatusOr<uint64_t> ProcessRssBytes();

// Bytes of [host, host + size) resident in memory (mincore: for guest RAM's shared memfd
// mapping, the pages the guest or the VMM ever touched). `host` must be page-aligned.
uint64_t ResidentBytes(const uint8_t* host, uint64_t size);

// Resident guest RAM over all regions.
uint64_t GuestRamResidentBytes(const GuestMemory& memory);

}  // namespace pcivmm

#endif  // PCIVMM_API_HOST_MEMORY_H_
