#ifndef PCIVMM_MMIO_MEMSLOT_TABLE_H_
#define PCIVMM_MMIO_MEMSLOT_TABLE_H_

#include <linux/kvm.h>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"

namespace pcivmm::mmio {

// The one ioctl the memslot table needs: real KVM in Vm, a fake in unit tests.
class MemslotBackend {
 public:
  virtual ~MemslotBackend() = default;
  virtual absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& region) = 0;
};

struct Memslot {
  uint32_t id;
  AddressRange range;
  void* host;
  bool read_only;
};

// Allocates KVM memory slot ids and keeps the installed slots free of overlaps, so KVM never
// sees an overlapping region. Ids come from [0, max_slots); a live id is never handed out
// again (a removed id becomes free). Thread-safe.
class MemslotTable {
 public:
  MemslotTable(MemslotBackend* backend, uint32_t max_slots);

  // Installs [gpa, gpa + size) backed by `host`. gpa, size and host must be 4 KiB aligned.
  // InvalidArgument on bad alignment or wrap, AlreadyExists on overlap, ResourceExhausted
  // when every slot id is live.
  absl::StatusOr<uint32_t> Install(uint64_t gpa, uint64_t size, void* host, bool read_only);
  absl::Status Remove(uint32_t id);

  // The installed slot overlapping `range`, if any; all of them.
  std::optional<Memslot> FindOverlap(const AddressRange& range) const;
  std::vector<Memslot> Overlapping(const AddressRange& range) const;
  std::vector<Memslot> List() const;
  uint32_t max_slots() const { return max_slots_; }

 private:
  uint32_t AllocateId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  MemslotBackend* const backend_;
  const uint32_t max_slots_;
  mutable absl::Mutex mu_;
  std::map<uint32_t, Memslot> live_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> freed_ ABSL_GUARDED_BY(mu_);
  uint32_t next_never_used_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pcivmm::mmio

#endif  // PCIVMM_MMIO_MEMSLOT_TABLE_H_
