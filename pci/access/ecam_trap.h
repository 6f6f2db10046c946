// Path 2 of 3: the ECAM window, every access trapping into PciBus (and so into each function's
// ConfigSpace). One exit per access; reaches the extended space (offsets 0x100..0xFFF).
#ifndef PCIVMM_PCI_ACCESS_ECAM_TRAP_H_
#define PCIVMM_PCI_ACCESS_ECAM_TRAP_H_

#include <cstdint>

#include "mmio/io_device.h"
#include "pci/pci_bus.h"

namespace pcivmm::pci {

inline constexpr uint64_t kEcamBase = 0xE000'0000;
inline constexpr uint64_t kEcamBytesPerBus = 1ull << 20;

// PCIe Base 4.0, 7.2.2, ECAM: "A[27:20] bus number, A[19:15] device, A[14:12] function,
// A[11:2] register number, A[1:0] byte address".
struct EcamOffset {
  uint64_t raw;
  constexpr Bdf bdf() const {
    return {static_cast<uint8_t>(raw >> 20), static_cast<uint8_t>((raw >> 15) & 0x1F),
            static_cast<uint8_t>((raw >> 12) & 0x7)};
  }
  constexpr uint16_t reg() const { return static_cast<uint16_t>(raw & 0xFFF); }
};

// The ECAM window: `bus_count` MiB at kEcamBase, every access trapping.
class EcamConfigAccess : public mmio::IoDevice {
 public:
  explicit EcamConfigAccess(PciBus* bus) : bus_(bus) {}
  std::string_view Name() const override { return "pci-ecam"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;
  uint64_t window_size() const {
    return kEcamBytesPerBus * static_cast<uint64_t>(bus_->bus_count());
  }

 private:
  PciBus* const bus_;
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_ACCESS_ECAM_TRAP_H_
