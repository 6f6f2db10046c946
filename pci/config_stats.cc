#include "pci/config_stats.h"

#include <cstdio>

namespace pcivmm::pci {
namespace {

size_t RegisterIndex(ConfigPath p, mmio::Direction d, uint32_t function, uint16_t reg) {
  const size_t slot = static_cast<size_t>(p) * 2 + static_cast<size_t>(d);
  return (size_t{function} * ConfigStats::kDwords + (reg >> 2)) * (size_t{kConfigPathCount} * 2) +
         slot;
}

}  // namespace

const char* ConfigPathName(ConfigPath path) {
  switch (path) {
    case ConfigPath::kPio:
      return "pio";
    case ConfigPath::kEcam:
      return "ecam";
    case ConfigPath::kHost:
      return "host";
  }
  return "?";
}

ConfigStats::ConfigStats()
    : by_register_(static_cast<uint64_t*>(
          std::calloc(kFunctions * kDwords * kConfigPathCount * 2, sizeof(uint64_t)))) {
  if (!by_register_) {
    std::fputs("pcivmm: out of memory for config counters\n", stderr);
    std::abort();
  }
}

void ConfigStats::Count(ConfigPath path, mmio::Direction dir, uint32_t function, uint16_t reg) {
  Add(by_path_[Slot(path, dir)]);
  if (function < kFunctions && reg < kDwords * 4) {
    Add(by_function_[size_t{function} * kConfigPathCount * 2 + Slot(path, dir)]);
    Add(by_register_.get()[RegisterIndex(path, dir, function, reg)]);
  }
}

uint64_t ConfigStats::function_accesses(ConfigPath path, mmio::Direction dir,
                                        uint32_t function) const {
  if (function >= kFunctions) return 0;
  return Load(by_function_[size_t{function} * kConfigPathCount * 2 + Slot(path, dir)]);
}

uint64_t ConfigStats::accesses(ConfigPath path, mmio::Direction dir) const {
  return Load(by_path_[Slot(path, dir)]);
}

uint64_t ConfigStats::register_accesses(ConfigPath path, mmio::Direction dir, uint32_t function,
                                        uint16_t reg) const {
  if (function >= kFunctions || reg >= kDwords * 4) return 0;
  return Load(by_register_.get()[RegisterIndex(path, dir, function, reg)]);
}

}  // namespace pcivmm::pci
