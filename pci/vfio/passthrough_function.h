// A real PCI device (VFIO) as a function on the guest's bus: its config space through every
// access path, its BARs as memory slots or trapping ranges, its MSI routed to the guest.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "mmio/bus.h"
#include "pci/bar_mapper.h"
#include "pci/latency_histogram.h"
#include "pci/pci_bus.h"
#include "pci/vfio/interrupt_router.h"
#include "pci/vfio/passthrough_bars.h"
#include "pci/vfio/passthrough_config.h"
#include "pci/vfio/passthrough_device.h"
#include "pci/vfio/passthrough_interrupts.h"

namespace pcivmm::vfio {

struct PassthroughOptions {
  std::string name{};  // the function's name in listings; default "vfio-<host address>"
  int slot = 1;        // device number on the guest's bus 0
  // Emulate the MSI capability and route the device's MSI to the guest (needs a router).
  bool forward_msi = true;
  // Serve the function's config reads from the ECAM shadow instead of trapping. The shadow
  // is refreshed from the device at activation and after every config write to the function
  // (the written dword and the command/status dword); what the device changes on its own
  // (status bits, PCIe link/device status, PME status) reads stale through ECAM until then.
  bool config_fast_path = false;
  // Map the mmappable BAR areas as memory slots; false: every BAR access traps and goes
  // through the region fd (to compare the two paths).
  bool mmap_bars = true;
};

// The function's DeviceSpec from the device: IDs and class from its config space, each BAR's
// kind from its register and its size from the region info. No ROM (not exposed), no
// emulated capabilities (the device's own show through).
absl::StatusOr<pci::DeviceSpec> PassthroughSpec(const PassthroughDevice& device,
                                                const PassthroughOptions& options);

// Who owns what (the guest's view is the merge, per bit):
//   - the VMM: the BARs and ROM BAR (firmware-assigned guest addresses; the sizes are the
//     region sizes), the command register's I/O and memory decode bits (the device's real
//     decode stays on from Activate() on: a slot over a BAR whose real decode is off makes
//     KVM_RUN fail with EFAULT), the header type byte, the interrupt line, the MSI capability
//     when forwarded, and the link to an MSI-X capability (hidden: not forwarded);
//   - the device: everything else, read and written through the VFIO config region.
// Guest writes to VMM-owned bits never reach the device.
//
// BARs: every mmappable area of a memory BAR becomes a slot through the vBAR mapper (which
// never keeps one while the guest's decode is off), except the pages of the MSI-X table and
// PBA, which always trap (VFIO reads them as all-ones); the whole BAR is also registered as a
// trapping range on the MMIO (or port) bus, which serves whatever no slot covers (sub-page
// BARs, sparse-mmap gaps, non-mmappable regions) through the region fd. Slots and ranges
// follow where the BAR decodes (DecodeBar, the same answer as an emulated BAR's) on the one
// reconcile path (pci/bar_relocation.h). A trapped access reads all-ones and is dropped while
// the guest's decode is off or the BAR is mid-move.
//
// In files by concern: the config merge (passthrough_config.h), the BARs
// (passthrough_bars.h), the interrupts (passthrough_interrupts.h); this class ties them.
//
// Threads: config reads and BAR traps run on vCPU threads (no lock; counters are atomic);
// OnWrite runs under the function's write lock, which serialises MSI and trap updates.
class PassthroughFunction : public pci::ConfigPassthrough {
 public:
  struct Counters {
    uint64_t config_device_reads = 0;
    uint64_t config_device_writes = 0;  // writes forwarded to the device
    uint64_t config_owned_writes = 0;   // writes that only touched VMM-owned bits
    uint64_t bar_reads = 0;             // trapped BAR accesses forwarded to the device
    uint64_t bar_writes = 0;
    uint64_t bar_dropped = 0;  // trapped while decode was off: all-ones / dropped
    uint64_t device_errors = 0;
    uint64_t msi_enables = 0;
  };

  // Adds the function to `bus` (before the firmware assigns BARs). The device must outlive it.
  static absl::StatusOr<std::unique_ptr<PassthroughFunction>> Create(PassthroughDevice& device,
                                                                     pci::PciBus& bus,
                                                                     PassthroughOptions options);
  ~PassthroughFunction() override;
  PassthroughFunction(const PassthroughFunction&) = delete;
  PassthroughFunction& operator=(const PassthroughFunction&) = delete;

  // After the firmware assigned the BARs: turns the device's real decode on, hands the
  // mmappable areas to the mapper, registers the trapping ranges, and routes the device's
  // INTx to `intx_gsi` (the GSI the platform's _PRT gives the function's pin). `router` may
  // be null (no interrupt controller: nothing is forwarded, MSI enables are only counted).
  // All must outlive this.
  absl::Status Activate(mmio::Bus& mmio, mmio::Bus& pio, pci::BarMapper& mapper,
                        InterruptRouter* router, std::optional<uint32_t> intx_gsi = std::nullopt);

  uint32_t DeviceBits(uint16_t dword) const override;
  uint32_t ReadDevice(uint16_t offset, uint8_t width) const override;
  void OnWrite(uint16_t offset, uint8_t width, uint32_t value) override;

  // A trapped access to BAR `bar` at `offset` (from the bus).
  void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data);
  void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data);

  pci::PciFunction& function() const { return *function_; }
  PassthroughDevice& device() const { return device_; }
  Counters counters() const;
  // The device's real command register write at activation (decode on), timed.
  const pci::LatencyHistogram& real_decode_writes() const { return config_->real_decode_writes(); }
  uint8_t msi_capability() const { return config_->msi_capability(); }
  bool msi_enabled() const { return interrupts_->msi_enabled(); }
  bool intx_routed() const { return interrupts_->intx_routed(); }

 private:
  PassthroughFunction(PassthroughDevice& device, PassthroughOptions options)
      : device_(device), options_(std::move(options)) {}
  void Mirror(uint16_t offset, uint8_t width);

  // By concern: the config merge, the BARs, the interrupts (each in its own file).
  PassthroughDevice& device_;
  const PassthroughOptions options_;
  pci::PciFunction* function_ = nullptr;
  std::unique_ptr<PassthroughConfig> config_;
  std::unique_ptr<PassthroughBars> bars_;
  std::unique_ptr<PassthroughInterrupts> interrupts_;
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_
