// A real PCI device (VFIO) as a function on the guest's bus: its config space through every
// access path, its BARs as memory slots or trapping ranges, its MSI routed to the guest.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mmio/bus.h"
#include "pci/bar_mapper.h"
#include "pci/latency_histogram.h"
#include "pci/pci_bus.h"
#include "pci/vfio/interrupt_router.h"
#include "pci/vfio/passthrough_device.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm {

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
absl::StatusOr<DeviceSpec> PassthroughSpec(const PassthroughDevice& device,
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
// BARs, sparse-mmap gaps, non-mmappable regions) through the region fd. A trapped access
// reads all-ones and is dropped while the guest's decode is off or the BAR is mid-move.
//
// Threads: config reads and BAR traps run on vCPU threads (no lock; counters are atomic);
// OnWrite runs under the function's write lock, which serialises MSI and trap updates.
class PassthroughFunction : public ConfigPassthrough {
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
                                                                     PciBus& bus,
                                                                     PassthroughOptions options);
  ~PassthroughFunction() override;
  PassthroughFunction(const PassthroughFunction&) = delete;
  PassthroughFunction& operator=(const PassthroughFunction&) = delete;

  // After the firmware assigned the BARs: turns the device's real decode on, hands the
  // mmappable areas to the mapper, registers the trapping ranges, and routes the device's
  // INTx to `intx_gsi` (the GSI the platform's _PRT gives the function's pin). `router` may
  // be null (no interrupt controller: nothing is forwarded, MSI enables are only counted).
  // All must outlive this.
  absl::Status Activate(Bus& mmio, Bus& pio, BarMapper& mapper, InterruptRouter* router,
                        std::optional<uint32_t> intx_gsi = std::nullopt);

  uint32_t DeviceBits(uint16_t dword) const override;
  uint32_t ReadDevice(uint16_t offset, uint8_t width) const override;
  void OnWrite(uint16_t offset, uint8_t width, uint32_t value) override;

  // A trapped access to BAR `bar` at `offset` (from the bus).
  void BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data);
  void BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data);

  PciFunction& function() const { return *function_; }
  PassthroughDevice& device() const { return device_; }
  Counters counters() const;
  // The device's real command register write at activation (decode on), timed.
  const LatencyHistogram& real_decode_writes() const { return real_decode_writes_; }
  uint8_t msi_capability() const { return msi_cap_; }
  bool msi_enabled() const;
  bool intx_routed() const { return intx_.gsi.has_value(); }

 private:
  struct Trap {
    const BarSpec* spec = nullptr;
    Bus* bus = nullptr;
    int region = -1;
    std::atomic<uint64_t> base{0};
  };
  struct Intx {
    std::optional<uint32_t> gsi;  // routed
    UniqueFd trigger;
    UniqueFd resample;
    bool on_device = false;  // VFIO signals `trigger` (off while MSI is on)
  };
  // Where the MSI-X table or PBA sits in a BAR, widened to whole pages: kept out of slots.
  struct TrappedRange {
    int bar;
    uint64_t begin;
    uint64_t end;
  };
  struct Msi {
    uint64_t address = 0;
    uint32_t data = 0;
    uint32_t vectors = 0;  // enabled vectors (0: off)
    std::vector<UniqueFd> fds;
    std::vector<int> routes;
  };

  PassthroughFunction(PassthroughDevice& device, PassthroughOptions options)
      : device_(device), options_(std::move(options)) {}
  absl::Status InitOwnership();
  void EmulateMsi();
  void HideMsix();
  std::vector<BarPiece> SlotPieces(int bar) const;
  absl::Status EnableRealDecode();
  void ForwardWrite(uint16_t offset, uint8_t width, uint32_t value, uint32_t mask);
  uint32_t RealOwnedValue(uint16_t offset, uint8_t width);
  void ReconcileTraps();
  bool Decoded(int bar) const;
  bool InSizingProbe(const BarSpec& bar) const;
  absl::Status RouteIntx(uint32_t gsi);
  absl::Status SetDeviceIntx(bool on);
  void UpdateMsi();
  void DisableMsi();
  absl::Status EnableMsi(uint32_t vectors);
  void Mirror(uint16_t offset, uint8_t width);

  PassthroughDevice& device_;
  const PassthroughOptions options_;
  PciFunction* function_ = nullptr;
  uint16_t config_size_ = 0;
  uint16_t real_decode_ = 0;  // the command bits the VMM keeps set on the device
  std::array<uint32_t, 1024> device_bits_{};
  std::array<Trap, 6> traps_{};
  InterruptRouter* router_ = nullptr;
  uint8_t msi_cap_ = 0;
  std::vector<TrappedRange> msix_ranges_;
  bool msi_64bit_ = false;
  Intx intx_;  // set up by Activate; on_device guarded by the function's write lock
  Msi msi_;    // guarded by the function's write lock
  std::atomic<bool> msi_on_{false};
  LatencyHistogram real_decode_writes_;
  mutable std::atomic<uint64_t> config_device_reads_{0};
  std::atomic<uint64_t> config_device_writes_{0};
  std::atomic<uint64_t> config_owned_writes_{0};
  std::atomic<uint64_t> bar_reads_{0};
  std::atomic<uint64_t> bar_writes_{0};
  std::atomic<uint64_t> bar_dropped_{0};
  mutable std::atomic<uint64_t> device_errors_{0};
  std::atomic<uint64_t> msi_enables_{0};
};

}  // namespace pcivmm

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_FUNCTION_H_
