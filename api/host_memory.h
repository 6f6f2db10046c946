// What the VMM process costs in memory beyond guest RAM.
#ifndef PCIVMM_API_HOST_MEMORY_H_
#define PCIVMM_API_HOST_MEMORY_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "vmm/kvm/guest_memory.h"

namespace pcivmm::api {

// This process's resident set (/proc/self/status), in bytes: VmRSS and its parts.
struct ProcessRss {
  uint64_t total = 0;  // VmRSS
  uint64_t anon = 0;   // RssAnon: guest RAM, heap, stacks, counters
  uint64_t file = 0;   // RssFile: shared-library and executable pages
  uint64_t shmem = 0;  // RssShmem: memfds (BAR backings, config pages)
};
absl::StatusOr<ProcessRss> ProcessRssBytes();

// Bytes of [host, host + size) resident in memory (mincore: for guest RAM, the pages the
// guest or the VMM ever touched). `host` must be page-aligned.
uint64_t ResidentBytes(const uint8_t* host, uint64_t size);

// Resident guest RAM over all regions.
uint64_t GuestRamResidentBytes(const kvm::GuestMemory& memory);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_HOST_MEMORY_H_
