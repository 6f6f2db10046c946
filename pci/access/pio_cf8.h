// Path 1 of 3: PCI configuration mechanism #1, ports 0xCF8..0xCFF, in front of PciBus (and so
// of each function's ConfigSpace). Two exits per access: the address, then the data.
#ifndef PCIVMM_PCI_ACCESS_PIO_CF8_H_
#define PCIVMM_PCI_ACCESS_PIO_CF8_H_

#include <atomic>
#include <cstdint>

#include "mmio/io_device.h"
#include "pci/pci_bus.h"

namespace pcivmm::pci {

inline constexpr uint16_t kPioConfigAddressPort = 0xCF8;
inline constexpr uint16_t kPioConfigDataPort = 0xCFC;

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

// Ports 0xCF8..0xCFF. Switched off, every port reads all-ones and ignores writes, so a
// guest's type-1 probe (write 0x80000000 to 0xCF8, read it back) fails.
class PioConfigAccess : public mmio::IoDevice {
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

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_ACCESS_PIO_CF8_H_
