#include "vmm/kvm/guest_memory.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::kvm {

absl::StatusOr<GuestMemory> GuestMemory::Create(uint64_t ram_bytes) {
  constexpr uint64_t kMinRam = 2ull << 20;
  if (ram_bytes < kMinRam || (ram_bytes & 0xFFFFF) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ram size %#x: must be a multiple of 1 MiB and at least 2 MiB", ram_bytes));
  }
  PCIVMM_ASSIGN_OR_RETURN(base::HostMapping backing,
                          base::HostMapping::CreateAnonymous("guest-ram", ram_bytes));
  std::vector<Region> regions;
  const uint64_t low = std::min(ram_bytes, kLowRamLimit);
  regions.push_back({*mmio::AddressRange::Make(0, low), backing.data()});
  if (ram_bytes > low) {
    auto high = mmio::AddressRange::Make(kHighRamBase, ram_bytes - low);
    if (!high) return absl::InvalidArgumentError("ram size overflows the address space");
    regions.push_back({*high, backing.data() + low});
  }
  return GuestMemory(std::move(backing), std::move(regions));
}

absl::Status GuestMemory::InstallSlots(mmio::MemslotTable& slots) const {
  for (const Region& r : regions_) {
    PCIVMM_RETURN_IF_ERROR(
        slots.Install(r.gpa.base(), r.gpa.size(), r.host, /*read_only=*/false).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Span<uint8_t>> GuestMemory::Translate(uint64_t gpa, uint64_t len) const {
  for (const Region& r : regions_) {
    if (r.gpa.Contains(gpa, len)) return absl::MakeSpan(r.host + (gpa - r.gpa.base()), len);
  }
  return absl::OutOfRangeError(
      absl::StrFormat("guest range [%#x, +%#x) is not entirely RAM", gpa, len));
}

absl::Status GuestMemory::Write(uint64_t gpa, absl::Span<const uint8_t> bytes) const {
  PCIVMM_ASSIGN_OR_RETURN(absl::Span<uint8_t> dst, Translate(gpa, bytes.size()));
  std::memcpy(dst.data(), bytes.data(), bytes.size());
  return absl::OkStatus();
}

}  // namespace pcivmm::kvm
