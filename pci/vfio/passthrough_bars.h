// A passthrough function's BARs: memory slots through the vBAR mapper, and a trapping range
// per BAR that serves through the device's region whatever no slot covers.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_BARS_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_BARS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "mmio/bus.h"
#include "pci/bar_mapper.h"
#include "pci/pci_function.h"
#include "pci/vfio/passthrough_config.h"
#include "pci/vfio/passthrough_device.h"

namespace pcivmm::vfio {

// The mapped areas of a BAR's region minus the pages of the MSI-X table and PBA in it.
std::vector<pci::BarPiece> SlotPieces(const DeviceRegion& region, int bar,
                                      const std::vector<TrappedRange>& msix_ranges);

// Every mmappable area of a memory BAR becomes a slot through the vBAR mapper (which never
// keeps one while the guest's decode is off), except the MSI-X pages; the whole BAR is also a
// trapping range on the MMIO (or port) bus. Both follow where the BAR decodes (DecodeBar) on
// the one reconcile path (pci/bar_relocation.h): the mapper's slots under its policy, the
// trapping range kept where it was while the BAR decodes nowhere. A trapped access reads
// all-ones and is dropped unless the guest's decode bit is on and the BAR's address is the
// range's.
//
// Threads: Read/Write on vCPU threads (no lock; counters are atomic); Reconcile under the
// function's write lock.
class PassthroughBars {
 public:
  struct Counters {
    uint64_t reads = 0;  // trapped accesses forwarded to the device
    uint64_t writes = 0;
    uint64_t dropped = 0;  // trapped while the BAR did not decode there
    uint64_t device_errors = 0;
  };

  PassthroughBars(pci::PciFunction& function, PassthroughDevice& device)
      : function_(function), device_(device) {}
  ~PassthroughBars();
  PassthroughBars(const PassthroughBars&) = delete;
  PassthroughBars& operator=(const PassthroughBars&) = delete;

  // After the firmware assigned the BARs: registers a trapping range per BAR at its address
  // and hands the mmappable areas (minus `msix_ranges`) to `mapper` unless `!mmap_bars`.
  absl::Status Attach(mmio::Bus& mmio, mmio::Bus& pio, pci::BarMapper& mapper, bool mmap_bars,
                      const std::vector<TrappedRange>& msix_ranges);
  // After a write to the command register or a BAR: the trapping ranges follow.
  void Reconcile();

  // A trapped access to BAR `bar` at `offset` (from the bus).
  void Read(int bar, uint64_t offset, absl::Span<uint8_t> data);
  void Write(int bar, uint64_t offset, absl::Span<const uint8_t> data);

  Counters counters() const;

 private:
  struct Trap {
    const pci::BarSpec* spec = nullptr;
    mmio::Bus* bus = nullptr;
    int region = -1;
    std::atomic<uint64_t> base{0};
  };
  class TrapRelocator;

  bool Decoded(int bar) const;

  pci::PciFunction& function_;
  PassthroughDevice& device_;
  std::array<Trap, 6> traps_{};
  std::atomic<uint64_t> reads_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> device_errors_{0};
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_BARS_H_
