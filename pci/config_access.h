// The guest-facing configuration mechanisms: thin decoders in front of PciBus.
#ifndef PCIVMM_PCI_CONFIG_ACCESS_H_
#define PCIVMM_PCI_CONFIG_ACCESS_H_

#include <atomic>
#include <cstdint>

#include "mmio/io_device.h"
#include "pci/pci_bus.h"

namespace pcivmm {

inline constexpr uint16_t kPioConfigAddressPort = 0xCF8;
inline constexpr uint16_t kPioConfigDataPort = 0xCFC;
inline constexpr uint64_t kEcamBase = 0xE000'0000;
inline constexpr uint64_t kEcamBytesPerBus = 1ull << 20;

// PCI 3.0, 3.2.2.3.2, configuration mechanism #1: "CONFIG_ADDRESS ... bit 31 is an enable
// flag ... bits 23:16 bus number, 15:11 device number, 10:8 function number, 7:2 register
// number". Only 32-bit accesses to 0xCF8 reach the address register.
struct PioConfigAddress {
  static constexpr uint32_t kEnable = 1u << 31;
  uint32_t raw;
  constexpr bool enabled() const { return (raw & kEnable) != 0; }
  constexpr Bdf bdf() const {
    return {static_cast<uint8_t>(raw >> 16), static_cast<uint8_t>((raw >> 11) & 0x1F),
            static_cast<uint8_t>((raw >> 8) & 0x7)};
  }
  constexpr uint16_t reg() const { return static_cast<uint16_t>(raw & 0xFC); }
};

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

// Ports 0xCF8..0xCFF. Switched off, every port reads all-ones and ignores writes, so a
// guest's type-1 probe (write 0x80000000 to 0xCF8, read it back) fails.
class PioConfigAccess : public IoDevice {
 public:
  explicit PioConfigAccess(PciBus* bus) : bus_(bus) {}
  std::string_view Name() const override { return "pci-pio-config"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;
  void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

 private:
  PciBus* const bus_;
  std::atomic<uint32_t> address_{0};
  std::atomic<bool> enabled_{true};
};

// The ECAM window: `bus_count` MiB at kEcamBase, every access trapping.
class EcamConfigAccess : public IoDevice {
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

// Little-endian helpers shared by the decoders.
uint32_t LoadLe(absl::Span<const uint8_t> data);
void StoreLe(uint32_t value, absl::Span<uint8_t> data);

}  // namespace pcivmm

#endif  // PCIVMM_PCI_CONFIG_ACCESS_H_
