#ifndef PCIVMM_VMM_KVM_GUEST_MEMORY_H_
#define PCIVMM_VMM_KVM_GUEST_MEMORY_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "mmio/address_range.h"
#include "mmio/memslot_table.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm::kvm {

// Guest physical memory map constants (vmm/ARCHITECTURE.md, "Guest physical memory map").
inline constexpr uint64_t kLowRamLimit = 0xC000'0000;  // RAM below 4 GiB ends at 3 GiB
inline constexpr uint64_t kHighRamBase = 0x1'0000'0000;

// Guest RAM: one memfd, split around the 32-bit PCI hole into [0, 3 GiB) and [4 GiB, ...).
class GuestMemory {
 public:
  struct Region {
    mmio::AddressRange gpa;
    uint8_t* host;
  };

  static absl::StatusOr<GuestMemory> Create(uint64_t ram_bytes);

  // Installs one memslot per region.
  absl::Status InstallSlots(mmio::MemslotTable& slots) const;

  // The host bytes of [gpa, gpa + len), or OutOfRange when any byte is not RAM.
  absl::StatusOr<absl::Span<uint8_t>> Translate(uint64_t gpa, uint64_t len) const;
  absl::Status Write(uint64_t gpa, absl::Span<const uint8_t> bytes) const;

  const std::vector<Region>& regions() const { return regions_; }
  uint64_t size() const { return backing_.size(); }
  // One past the highest RAM address.
  uint64_t end() const { return regions_.back().gpa.end(); }

 private:
  GuestMemory(base::HostMapping backing, std::vector<Region> regions)
      : backing_(std::move(backing)), regions_(std::move(regions)) {}
  base::HostMapping backing_;
  std::vector<Region> regions_;
};

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_GUEST_MEMORY_H_
