#ifndef PCIVMM_PCI_CONFIG_STATS_H_
#define PCIVMM_PCI_CONFIG_STATS_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "mmio/io_device.h"
#include "pci/bdf.h"

namespace pcivmm::pci {

// Exact counters of configuration accesses: by path and direction, by (function, dword
// register), and the malformed ones. Any thread may count (relaxed atomic adds: a
// config access already cost a VM exit, a locked add is noise next to it) or read.
class ConfigStats {
 public:
  // Functions are counted by their index in PciBus (its config page): bus 0's 256 device and
  // function numbers first (present or not), then the functions behind ports. An index stays
  // with its function when the guest renumbers buses.
  static constexpr size_t kFunctions = 512;
  static constexpr size_t kDwords = 1024;
  static constexpr uint32_t kNoFunction = ~0u;  // an absent function beyond bus 0: totals only

  ConfigStats();

  void Count(ConfigPath path, mmio::Direction dir, uint32_t function, uint16_t reg);
  void CountMalformed(ConfigPath path) { Add(malformed_[Index(path)]); }

  uint64_t accesses(ConfigPath path, mmio::Direction dir) const;
  // Accesses to the dword holding `reg` of the function with that index.
  uint64_t register_accesses(ConfigPath path, mmio::Direction dir, uint32_t function,
                             uint16_t reg) const;
  // Accesses to any register of the function (the sum of its register_accesses).
  uint64_t function_accesses(ConfigPath path, mmio::Direction dir, uint32_t function) const;
  // The same for a function on bus 0 by its address (its index is its devfn); 0 elsewhere.
  uint64_t register_accesses(ConfigPath path, mmio::Direction dir, Bdf bdf, uint16_t reg) const {
    return bdf.bus == 0 ? register_accesses(path, dir, uint32_t{bdf.devfn()}, reg) : 0;
  }
  uint64_t function_accesses(ConfigPath path, mmio::Direction dir, Bdf bdf) const {
    return bdf.bus == 0 ? function_accesses(path, dir, uint32_t{bdf.devfn()}) : 0;
  }
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
