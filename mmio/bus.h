#ifndef PCIVMM_MMIO_BUS_H_
#define PCIVMM_MMIO_BUS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"
#include "mmio/io_device.h"

namespace pcivmm {

// An address space (the port space or guest-physical MMIO) mapping ranges to devices.
//
// Concurrency: vCPU threads dispatch concurrently under a reader lock that is held only for
// the lookup; the device is kept alive by a shared_ptr copied out of the map, so a range
// unregistered while another vCPU is still inside its device is safe: the device is
// destroyed when the last access returns.
class Bus {
 public:
  // Region ids are dense and never reused, so per-region counters stay meaningful.
  static constexpr int kMaxRegions = 256;
  static constexpr int kUnclaimed = -1;

  // `limit` is one past the highest address (0x10000 for the port space).
  Bus(std::string name, uint64_t limit);

  // Registers `device` at [base, base + size). Returns the region id. Rejects empty,
  // out-of-bounds and overlapping ranges (InvalidArgument / AlreadyExists).
  absl::StatusOr<int> Register(uint64_t base, uint64_t size, std::shared_ptr<IoDevice> device);
  absl::Status Unregister(int region);

  // Dispatches an access and returns the region id that took it, or kUnclaimed.
  // An unclaimed read fills `data` with all-ones; an unclaimed write is dropped. An access
  // that straddles the end of a region is unclaimed too. Both are counted.
  int Read(uint64_t addr, absl::Span<uint8_t> data, int vcpu);
  int Write(uint64_t addr, absl::Span<const uint8_t> data, int vcpu);

  std::string RegionName(int region) const;
  int region_count() const;
  uint64_t unclaimed_reads() const { return unclaimed_reads_.load(std::memory_order_relaxed); }
  uint64_t unclaimed_writes() const { return unclaimed_writes_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  struct Entry {
    AddressRange range;
    int region;
    std::shared_ptr<IoDevice> device;
  };
  // Finds the entry holding all of [addr, addr + len), copying it out under the lock.
  std::optional<Entry> Find(uint64_t addr, uint64_t len) const;
  void LogUnclaimed(const char* what, uint64_t addr, size_t len);

  const std::string name_;
  const uint64_t limit_;
  mutable absl::Mutex mu_;
  std::map<uint64_t, Entry> by_base_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> region_names_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> unclaimed_reads_{0};
  std::atomic<uint64_t> unclaimed_writes_{0};
};

}  // namespace pcivmm

#endif  // PCIVMM_MMIO_BUS_H_
