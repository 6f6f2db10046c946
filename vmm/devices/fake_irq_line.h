// An IrqLine for tests and fuzz targets: remembers the level and counts the calls.
#ifndef PCIVMM_VMM_DEVICES_FAKE_IRQ_LINE_H_
#define PCIVMM_VMM_DEVICES_FAKE_IRQ_LINE_H_

#include <atomic>
#include <cstdint>

#include "vmm/devices/irq_line.h"

namespace pcivmm::devices::testing {

class FakeIrqLine : public IrqLine {
 public:
  void Set(bool level) override {
    if (level && !level_.load()) rising_edges_.fetch_add(1);
    if (level == level_.load()) redundant_sets_.fetch_add(1);
    level_.store(level);
    sets_.fetch_add(1);
  }
  bool level() const { return level_.load(); }
  uint64_t rising_edges() const { return rising_edges_.load(); }
  uint64_t sets() const { return sets_.load(); }
  // Calls that did not change the level (devices here only report changes).
  uint64_t redundant_sets() const { return redundant_sets_.load(); }

 private:
  std::atomic<bool> level_{false};
  std::atomic<uint64_t> rising_edges_{0};
  std::atomic<uint64_t> sets_{0};
  std::atomic<uint64_t> redundant_sets_{0};
};

}  // namespace pcivmm::devices::testing

#endif  // PCIVMM_VMM_DEVICES_FAKE_IRQ_LINE_H_
