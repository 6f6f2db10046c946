#ifndef PCIVMM_VMM_KVM_EXIT_STATS_H_
#define PCIVMM_VMM_KVM_EXIT_STATS_H_

#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "mmio/bus.h"

namespace pcivmm::kvm {

// Exit counters of one vCPU. Single writer (the vCPU thread), so an increment is a relaxed
// load and store with no locked instruction; any thread may read with relaxed loads and sum.
// Counts are exact: every KVM_RUN return that carries an exit is counted once.
class VcpuExitStats {
 public:
  static constexpr uint32_t kMaxExitReason = 64;  // KVM_EXIT_* values are below this
  static constexpr uint32_t kPorts = 0x10000;
  static constexpr uint32_t kNoExit = UINT32_MAX;  // last_exit_reason() before the first exit

  VcpuExitStats();

  void CountExit(uint32_t reason) {
    Bump(reasons_[reason < kMaxExitReason ? reason : 0]);
    last_exit_.store(reason, std::memory_order_relaxed);
  }
  void CountPio(uint16_t port, mmio::Direction dir) {
    const size_t i = PortIndex(port, dir);
    Mark(i);
    Bump(ports_.get()[i]);
  }
  void CountMmio(int region, mmio::Direction dir) { Bump(mmio_[MmioIndex(region, dir)]); }

  uint64_t exits(uint32_t reason) const;
  uint64_t total_exits() const;
  // The KVM_EXIT_* reason of the latest exit (as KVM reported it), kNoExit before the first.
  uint32_t last_exit_reason() const { return last_exit_.load(std::memory_order_relaxed); }
  uint64_t pio(uint16_t port, mmio::Direction dir) const;
  uint64_t mmio(int region, mmio::Direction dir) const;
  // Bit port * 2 + direction is set once that port had an exit in that direction: readers
  // scan 2,048 words instead of 131,072 counters.
  static constexpr size_t kTouchedWords = size_t{kPorts} * 2 / 64;
  uint64_t touched_word(size_t i) const { return Load(touched_[i]); }

 private:
  struct FreeDeleter {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  static void Bump(uint64_t& c) {
    std::atomic_ref<uint64_t> r(c);
    r.store(r.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  static uint64_t Load(const uint64_t& c) {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
  }
  // Single writer: a load and, the first time only, a store.
  void Mark(size_t i) {
    uint64_t& w = touched_[i / 64];
    const uint64_t bit = 1ull << (i % 64);
    if (const uint64_t v = Load(w); (v & bit) == 0) {
      std::atomic_ref<uint64_t>(w).store(v | bit, std::memory_order_relaxed);
    }
  }
  static size_t PortIndex(uint16_t port, mmio::Direction dir) {
    return size_t{port} * 2 + static_cast<size_t>(dir);
  }
  // Region kUnclaimed (-1) has slot 0.
  static size_t MmioIndex(int region, mmio::Direction dir) {
    return static_cast<size_t>(region + 1) * 2 + static_cast<size_t>(dir);
  }

  uint64_t reasons_[kMaxExitReason] = {};
  std::atomic<uint32_t> last_exit_{kNoExit};
  uint64_t mmio_[(mmio::Bus::kMaxRegions + 1) * 2] = {};
  uint64_t touched_[kTouchedWords] = {};
  // 1 MiB, from calloc: large calloc blocks are fresh zero pages, so only the ports a guest
  // touches cost memory.
  std::unique_ptr<uint64_t, FreeDeleter> ports_;
};

// The exit counters of every vCPU of a VM, summed on read.
class ExitStats {
 public:
  explicit ExitStats(int vcpus);
  VcpuExitStats& vcpu(int index) { return *per_vcpu_[static_cast<size_t>(index)]; }
  const VcpuExitStats& vcpu(int index) const { return *per_vcpu_[static_cast<size_t>(index)]; }
  int vcpu_count() const { return static_cast<int>(per_vcpu_.size()); }

  uint64_t exits(uint32_t reason) const;
  uint64_t total_exits() const;
  uint64_t pio(uint16_t port, mmio::Direction dir) const;
  uint64_t mmio(int region, mmio::Direction dir) const;
  // Calls fn(port, direction) for every port with an exit on any vCPU, in ascending order.
  template <typename Fn>
  void ForEachTouchedPort(Fn&& fn) const {
    for (size_t i = 0; i < VcpuExitStats::kTouchedWords; ++i) {
      uint64_t w = 0;
      for (const auto& v : per_vcpu_) w |= v->touched_word(i);
      for (; w != 0; w &= w - 1) {
        const size_t bit = i * 64 + static_cast<size_t>(std::countr_zero(w));
        fn(static_cast<uint16_t>(bit / 2), static_cast<mmio::Direction>(bit % 2));
      }
    }
  }

 private:
  std::vector<std::unique_ptr<VcpuExitStats>> per_vcpu_;
};

// "IO", "MMIO", "HLT", ...: the KVM_EXIT_* name without its prefix.
const char* ExitReasonName(uint32_t reason);

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_EXIT_STATS_H_
