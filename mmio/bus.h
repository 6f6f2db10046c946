#ifndef PCIVMM_MMIO_BUS_H_
#define PCIVMM_MMIO_BUS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"
#include "mmio/io_device.h"

namespace pcivmm::mmio {

// An address space (the port space or guest-physical MMIO) mapping ranges to devices.
//
// Concurrency: the ranges live in an immutable snapshot, replaced (copy on write) by
// Register/Unregister under mu_. A vCPU dispatches through its own View, which keeps a
// shared_ptr to the snapshot it last saw and refreshes it only when the generation counter
// moves: the exit path takes no lock and touches no shared refcount. A range unregistered
// while another vCPU is still inside its device is safe: that vCPU's snapshot keeps the
// device alive until its next exit refreshes the view.
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
  // Moves a registered range to start at `base`, keeping its id, size and device (a BAR the
  // guest moved). On failure (NotFound, or InvalidArgument / AlreadyExists as Register) the
  // range stays where it was.
  absl::Status Move(int region, uint64_t base);

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
  using Snapshot = std::vector<Entry>;  // sorted by base, non-overlapping

 public:
  // One vCPU's lock-free window on the bus. Not thread-safe: one per vCPU thread.
  class View {
   public:
    explicit View(Bus* bus) : bus_(bus) {}
    int Read(uint64_t addr, absl::Span<uint8_t> data, int vcpu);
    int Write(uint64_t addr, absl::Span<const uint8_t> data, int vcpu);

   private:
    const Snapshot& Current();
    Bus* const bus_;
    uint64_t generation_ = ~0ull;
    std::shared_ptr<const Snapshot> snapshot_;
  };

 private:
  std::shared_ptr<const Snapshot> snapshot() const;
  void Publish(Snapshot next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static const Entry* Find(const Snapshot& s, uint64_t addr, uint64_t len);
  absl::StatusOr<Snapshot::iterator> FindRegion(Snapshot& s, int region) const;
  int DoRead(const Snapshot& s, uint64_t addr, absl::Span<uint8_t> data, int vcpu);
  int DoWrite(const Snapshot& s, uint64_t addr, absl::Span<const uint8_t> data, int vcpu);
  void LogUnclaimed(const char* what, uint64_t addr, size_t len);

  const std::string name_;
  const uint64_t limit_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{0};
  std::vector<std::string> region_names_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> unclaimed_reads_{0};
  std::atomic<uint64_t> unclaimed_writes_{0};
};

}  // namespace pcivmm::mmio

#endif  // PCIVMM_MMIO_BUS_H_
