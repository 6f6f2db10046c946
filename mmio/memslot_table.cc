#include "mmio/memslot_table.h"

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::mmio {
namespace {

constexpr uint64_t kPageMask = 0xFFF;

bool PageAligned(uint64_t v) { return (v & kPageMask) == 0; }

}  // namespace

MemslotTable::MemslotTable(MemslotBackend* backend, uint32_t max_slots)
    : backend_(backend), max_slots_(max_slots) {}

uint32_t MemslotTable::AllocateId() {
  if (!freed_.empty()) {
    const uint32_t id = *freed_.begin();
    freed_.erase(freed_.begin());
    return id;
  }
  return next_never_used_++;
}

absl::StatusOr<uint32_t> MemslotTable::Install(uint64_t gpa, uint64_t size, void* host,
                                               bool read_only) {
  auto range = AddressRange::Make(gpa, size);
  const auto host_addr = reinterpret_cast<uint64_t>(host);
  if (!range || !PageAligned(gpa) || !PageAligned(size) || !PageAligned(host_addr)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "memslot gpa %#x size %#x host %p: must be non-empty, 4 KiB aligned, not wrapping", gpa,
        size, host));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [id, slot] : live_) {
    if (slot.range.Overlaps(*range)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("memslot [%#x, %#x) overlaps slot %d [%#x, %#x)", gpa, range->end(), id,
                          slot.range.base(), slot.range.end()));
    }
  }
  if (freed_.empty() && next_never_used_ >= max_slots_) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("all %d KVM memory slots are in use", max_slots_));
  }
  const uint32_t id = AllocateId();
  kvm_userspace_memory_region region{};
  region.slot = id;
  region.flags = read_only ? KVM_MEM_READONLY : 0;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = host_addr;
  if (absl::Status st = backend_->SetUserMemoryRegion(region); !st.ok()) {
    freed_.insert(id);
    return st;
  }
  live_.emplace(id, Memslot{id, *range, host, read_only});
  return id;
}

absl::Status MemslotTable::Remove(uint32_t id) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(id);
  if (it == live_.end()) {
    return absl::NotFoundError(absl::StrFormat("memslot %d is not installed", id));
  }
  // KVM deletes a slot when memory_size is 0; the other fields must still name the slot.
  kvm_userspace_memory_region region{};
  region.slot = id;
  region.guest_phys_addr = it->second.range.base();
  PCIVMM_RETURN_IF_ERROR(backend_->SetUserMemoryRegion(region));
  live_.erase(it);
  freed_.insert(id);
  return absl::OkStatus();
}

std::optional<Memslot> MemslotTable::FindOverlap(const AddressRange& range) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, slot] : live_) {
    if (slot.range.Overlaps(range)) return slot;
  }
  return std::nullopt;
}

std::vector<Memslot> MemslotTable::Overlapping(const AddressRange& range) const {
  absl::MutexLock lock(&mu_);
  std::vector<Memslot> out;
  for (const auto& [id, slot] : live_) {
    if (slot.range.Overlaps(range)) out.push_back(slot);
  }
  return out;
}

std::vector<Memslot> MemslotTable::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<Memslot> out;
  out.reserve(live_.size());
  for (const auto& [id, slot] : live_) out.push_back(slot);
  return out;
}

}  // namespace pcivmm::mmio
