#include "mmio/bus.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::mmio {

Bus::Bus(std::string name, uint64_t limit)
    : name_(std::move(name)), limit_(limit), snapshot_(std::make_shared<const Snapshot>()) {}

absl::StatusOr<int> Bus::Register(uint64_t base, uint64_t size, std::shared_ptr<IoDevice> device) {
  auto range = AddressRange::Make(base, size);
  if (!range || range->end() > limit_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: range [%#x, +%#x) is empty or beyond the bus limit %#x", name_,
                        base, size, limit_));
  }
  absl::MutexLock lock(&mu_);
  for (const Entry& e : *snapshot_) {
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
  Snapshot next = *snapshot_;
  next.push_back(Entry{*range, region, std::move(device)});
  std::sort(next.begin(), next.end(),
            [](const Entry& a, const Entry& b) { return a.range.base() < b.range.base(); });
  Publish(std::move(next));
  return region;
}

absl::StatusOr<Bus::Snapshot::iterator> Bus::FindRegion(Snapshot& s, int region) const {
  auto it =
      std::find_if(s.begin(), s.end(), [region](const Entry& e) { return e.region == region; });
  if (it == s.end()) {
    return absl::NotFoundError(absl::StrFormat("%s bus: no region %d", name_, region));
  }
  return it;
}

absl::Status Bus::Unregister(int region) {
  absl::MutexLock lock(&mu_);
  Snapshot next = *snapshot_;
  PCIVMM_ASSIGN_OR_RETURN(auto it, FindRegion(next, region));
  next.erase(it);
  Publish(std::move(next));
  return absl::OkStatus();
}

absl::Status Bus::Move(int region, uint64_t base) {
  absl::MutexLock lock(&mu_);
  Snapshot next = *snapshot_;
  PCIVMM_ASSIGN_OR_RETURN(auto it, FindRegion(next, region));
  auto range = AddressRange::Make(base, it->range.size());
  if (!range || range->end() > limit_) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s bus: %s moved to [%#x, +%#x) is beyond the bus limit %#x", name_,
                        it->device->Name(), base, it->range.size(), limit_));
  }
  for (const Entry& e : next) {
    if (e.region != region && e.range.Overlaps(*range)) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "%s bus: %s moved to [%#x, %#x) overlaps %s at [%#x, %#x)", name_, it->device->Name(),
          base, range->end(), e.device->Name(), e.range.base(), e.range.end()));
    }
  }
  it->range = *range;
  std::sort(next.begin(), next.end(),
            [](const Entry& a, const Entry& b) { return a.range.base() < b.range.base(); });
  Publish(std::move(next));
  return absl::OkStatus();
}

void Bus::Publish(Snapshot next) {
  snapshot_ = std::make_shared<const Snapshot>(std::move(next));
  generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const Bus::Snapshot> Bus::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

const Bus::Entry* Bus::Find(const Snapshot& s, uint64_t addr, uint64_t len) {
  auto it = std::upper_bound(s.begin(), s.end(), addr,
                             [](uint64_t a, const Entry& e) { return a < e.range.base(); });
  if (it == s.begin()) return nullptr;
  --it;
  return it->range.Contains(addr, len) ? &*it : nullptr;
}

int Bus::DoRead(const Snapshot& s, uint64_t addr, absl::Span<uint8_t> data, int vcpu) {
  const Entry* e = Find(s, addr, data.size());
  if (e == nullptr) {
    std::fill(data.begin(), data.end(), 0xFF);
    unclaimed_reads_.fetch_add(1, std::memory_order_relaxed);
    LogUnclaimed("read", addr, data.size());
    return kUnclaimed;
  }
  e->device->Read(addr - e->range.base(), data, vcpu);
  return e->region;
}

int Bus::DoWrite(const Snapshot& s, uint64_t addr, absl::Span<const uint8_t> data, int vcpu) {
  const Entry* e = Find(s, addr, data.size());
  if (e == nullptr) {
    unclaimed_writes_.fetch_add(1, std::memory_order_relaxed);
    LogUnclaimed("write", addr, data.size());
    return kUnclaimed;
  }
  e->device->Write(addr - e->range.base(), data, vcpu);
  return e->region;
}

int Bus::Read(uint64_t addr, absl::Span<uint8_t> data, int vcpu) {
  return DoRead(*snapshot(), addr, data, vcpu);
}

int Bus::Write(uint64_t addr, absl::Span<const uint8_t> data, int vcpu) {
  return DoWrite(*snapshot(), addr, data, vcpu);
}

const Bus::Snapshot& Bus::View::Current() {
  const uint64_t g = bus_->generation_.load(std::memory_order_acquire);
  if (g != generation_) {
    snapshot_ = bus_->snapshot();
    generation_ = g;
  }
  return *snapshot_;
}

int Bus::View::Read(uint64_t addr, absl::Span<uint8_t> data, int vcpu) {
  return bus_->DoRead(Current(), addr, data, vcpu);
}

int Bus::View::Write(uint64_t addr, absl::Span<const uint8_t> data, int vcpu) {
  return bus_->DoWrite(Current(), addr, data, vcpu);
}

void Bus::LogUnclaimed(const char* what, uint64_t addr, size_t len) {
  PCIVMM_LOG_GUEST("%s bus: unclaimed %d-byte %s at %#x", name_, len, what, addr);
}

std::string Bus::RegionName(int region) const {
  absl::MutexLock lock(&mu_);
  if (region < 0 || static_cast<size_t>(region) >= region_names_.size()) return "unclaimed";
  return region_names_[static_cast<size_t>(region)];
}

int Bus::region_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(region_names_.size());
}

}  // namespace pcivmm::mmio
