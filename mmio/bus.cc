#include "mmio/bus.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"

namespace pcivmm {

Bus::Bus(std::string name, uint64_t limit) : name_(std::move(name)), limit_(limit) {}

absl::StatusOr<int> Bus::Register(uint64_t base, uint64_t size, std::shared_ptr<IoDevice> device) {
  auto range = AddressRange::Make(base, size);
  if (!range || range->end() > limit_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: range [%#x, +%#x) is empty or beyond the bus limit %#x", name_,
                        base, size, limit_));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [unused, e] : by_base_) {
    if (e.range.Overlaps(*range)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "%s bus: %s at [%#x, %#x) overlaps %s at [%#x, %#x)", name_, device->Name(), base,
          range->end(), e.device->Name(), e.range.base(), e.range.end()));
    }
  }
  if (region_names_.size() >= static_cast<size_t>(kMaxRegions)) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%s bus: more than %d regions registered", name_, kMaxRegions));
  }
  const int region = static_cast<int>(region_names_.size());
  region_names_.emplace_back(device->Name());
  by_base_.emplace(base, Entry{*range, region, std::move(device)});
  return region;
}

absl::Status Bus::Unregister(int region) {
  absl::MutexLock lock(&mu_);
  auto it = std::find_if(by_base_.begin(), by_base_.end(),
                         [region](const auto& kv) { return kv.second.region == region; });
  if (it == by_base_.end()) {
    return absl::NotFoundError(absl::StrFormat("%s bus: no region %d", name_, region));
  }
  by_base_.erase(it);
  return absl::OkStatus();
}

std::optional<Bus::Entry> Bus::Find(uint64_t addr, uint64_t len) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = by_base_.upper_bound(addr);
  if (it == by_base_.begin()) return std::nullopt;
  --it;
  if (!it->second.range.Contains(addr, len)) return std::nullopt;
  return it->second;
}

int Bus::Read(uint64_t addr, absl::Span<uint8_t> data, int vcpu) {
  std::optional<Entry> e = Find(addr, data.size());
  if (!e) {
    std::fill(data.begin(), data.end(), 0xFF);
    unclaimed_reads_.fetch_add(1, std::memory_order_relaxed);
    LogUnclaimed("read", addr, data.size());
    return kUnclaimed;
  }
  e->device->Read(addr - e->range.base(), data, vcpu);
  return e->region;
}

int Bus::Write(uint64_t addr, absl::Span<const uint8_t> data, int vcpu) {
  std::optional<Entry> e = Find(addr, data.size());
  if (!e) {
    unclaimed_writes_.fetch_add(1, std::memory_order_relaxed);
    LogUnclaimed("write", addr, data.size());
    return kUnclaimed;
  }
  e->device->Write(addr - e->range.base(), data, vcpu);
  return e->region;
}

void Bus::LogUnclaimed(const char* what, uint64_t addr, size_t len) {
  PCIVMM_LOG_GUEST("%s bus: unclaimed %d-byte %s at %#x", name_, len, what, addr);
}

std::string Bus::RegionName(int region) const {
  absl::ReaderMutexLock lock(&mu_);
  if (region < 0 || static_cast<size_t>(region) >= region_names_.size()) return "unclaimed";
  return region_names_[static_cast<size_t>(region)];
}

int Bus::region_count() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int>(region_names_.size());
}

}  // namespace pcivmm
