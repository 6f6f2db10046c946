#ifndef PCIVMM_PCI_CONFIG_STATS_H_
#define PCIVMM_PCI_CONFIG_STATS_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "mmio/io_device.h"
#include "pci/bdf.h"

namespace pcivmm::pci {

// Exact counters of configuration accesses: by path and direction, by (function on bus 0,
// dword register), and the malformed ones. Any thread may count (relaxed atomic adds: a
// config access already cost a VM exit, a locked add is noise next to it) or read.
class ConfigStats {
 public:
  static constexpr size_t kFunctions = 256;  // bus 0
  static constexpr size_t kDwords = 1024;

  ConfigStats();

  void Count(ConfigPath path, mmio::Direction dir, Bdf bdf, uint16_t reg);
  void CountMalformed(ConfigPath path) { Add(malformed_[Index(path)]); }

  uint64_t accesses(ConfigPath path, mmio::Direction dir) const;
  // Accesses to the dword holding `reg` of a bus-0 function.
  uint64_t register_accesses(ConfigPath path, mmio::Direction dir, Bdf bdf, uint16_t reg) const;
  // Accesses to any register of a bus-0 function (the sum of its register_accesses).
  uint64_t function_accesses(ConfigPath path, mmio::Direction dir, Bdf bdf) const;
  uint64_t malformed(ConfigPath path) const { return Load(malformed_[Index(path)]); }

 private:
  struct FreeDeleter {
    void operator()(uint64_t* p) const { std::free(p); }
  };
  static size_t Index(ConfigPath p) { return static_cast<size_t>(p); }
  static size_t Slot(ConfigPath p, mmio::Direction d) {
    return Index(p) * 2 + static_cast<size_t>(d);
  }
  static void Add(uint64_t& c) {
    std::atomic_ref<uint64_t>(c).fetch_add(1, std::memory_order_relaxed);
  }
  static uint64_t Load(const uint64_t& c) {
    return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(c)).load(std::memory_order_relaxed);
  }

  uint64_t by_path_[kConfigPathCount * 2] = {};
  uint64_t by_function_[kFunctions * kConfigPathCount * 2] = {};
  uint64_t malformed_[kConfigPathCount] = {};
  // kFunctions * kDwords * paths * 2 counters (12 MiB of address space); calloc'd, so only
  // the pages of registers actually accessed cost memory.
  std::unique_ptr<uint64_t, FreeDeleter> by_register_;
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_CONFIG_STATS_H_
