// A passthrough function's config space, merged per bit: the device's bits are read and
// written through the VFIO config region, the VMM-owned ones live in the function's emulated
// registers and never reach the device.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_CONFIG_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_CONFIG_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "pci/latency_histogram.h"
#include "pci/pci_function.h"
#include "pci/vfio/passthrough_device.h"

namespace pcivmm::vfio {

// Where the MSI-X table or PBA sits in a BAR, widened to whole pages: kept out of slots.
struct TrappedRange {
  int bar;
  uint64_t begin;
  uint64_t end;
};

// Owns the split between the device's bits and the VMM's (see PassthroughFunction for the
// list). Threads: reads from vCPU threads (counters are atomic); the rest runs before the VM
// or under the function's write lock.
class PassthroughConfig {
 public:
  struct Counters {
    uint64_t device_reads = 0;
    uint64_t device_writes = 0;  // writes forwarded to the device
    uint64_t owned_writes = 0;   // writes that only touched VMM-owned bits
    uint64_t device_errors = 0;
  };

  // `config_size`: the device's config region, at most kConfigSpaceSize bytes.
  PassthroughConfig(PassthroughDevice& device, uint16_t config_size)
      : device_(device), config_size_(config_size) {}

  // Before the VM runs: takes the VMM-owned fields, emulates the MSI capability (when
  // `forward_msi` and the device has MSI) and unlinks the MSI-X capability, in `function`.
  void Init(pci::PciFunction& function, bool forward_msi);
  // Turns the device's decode on for every BAR of `spec` and its bus mastering off.
  absl::Status EnableRealDecode(const pci::DeviceSpec& spec);

  // The bits of the dword at `dword` that come from the device.
  uint32_t DeviceBits(uint16_t dword) const;
  // A read of the device's config region: all-ones (and counted) when it fails.
  uint32_t ReadDevice(uint16_t offset, uint8_t width) const;
  // After a guest write took effect in the emulation: forwards the device's bits.
  void ForwardWrite(uint16_t offset, uint8_t width, uint32_t value);

  uint16_t config_size() const { return config_size_; }
  uint8_t msi_capability() const { return msi_cap_; }  // 0: MSI not emulated
  bool msi_64bit() const { return msi_64bit_; }
  const std::vector<TrappedRange>& msix_ranges() const { return msix_ranges_; }
  const pci::LatencyHistogram& real_decode_writes() const { return real_decode_writes_; }
  Counters counters() const;

 private:
  void EmulateMsi(pci::PciFunction& function);
  void HideMsix(pci::PciFunction& function);
  void Forward(uint16_t offset, uint8_t width, uint32_t value, uint32_t mask);
  uint32_t RealOwnedValue(uint16_t offset, uint8_t width);

  PassthroughDevice& device_;
  const uint16_t config_size_;
  std::array<uint32_t, pci::kConfigSpaceSize / 4> device_bits_{};
  uint16_t real_decode_ = 0;  // the command bits the VMM keeps set on the device
  uint8_t msi_cap_ = 0;
  bool msi_64bit_ = false;
  std::vector<TrappedRange> msix_ranges_;
  pci::LatencyHistogram real_decode_writes_;
  mutable std::atomic<uint64_t> device_reads_{0};
  std::atomic<uint64_t> device_writes_{0};
  std::atomic<uint64_t> owned_writes_{0};
  mutable std::atomic<uint64_t> device_errors_{0};
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_CONFIG_H_
