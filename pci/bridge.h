// PCI-to-PCI bridges (the PCIe ports): the type-1 header's registers and what they decode.
// PCI-to-PCI Bridge Architecture Specification 1.2, chapter 3.2 (the header) and 4 (address
// decoding); PCIe r5.0, 7.5.1.3 (the type-1 header as PCIe ports implement it).
#ifndef PCIVMM_PCI_BRIDGE_H_
#define PCIVMM_PCI_BRIDGE_H_

#include <cstdint>
#include <optional>

#include "mmio/address_range.h"

namespace pcivmm::pci {

namespace bridge {
inline constexpr uint16_t kPrimaryBus = 0x18;
inline constexpr uint16_t kSecondaryBus = 0x19;
inline constexpr uint16_t kSubordinateBus = 0x1A;
inline constexpr uint16_t kSecondaryLatency = 0x1B;
inline constexpr uint16_t kIoBase = 0x1C;
inline constexpr uint16_t kIoLimit = 0x1D;
inline constexpr uint16_t kSecondaryStatus = 0x1E;
inline constexpr uint16_t kMemoryBase = 0x20;
inline constexpr uint16_t kMemoryLimit = 0x22;
inline constexpr uint16_t kPrefetchBase = 0x24;
inline constexpr uint16_t kPrefetchLimit = 0x26;
inline constexpr uint16_t kPrefetchBaseUpper = 0x28;
inline constexpr uint16_t kPrefetchLimitUpper = 0x2C;
inline constexpr uint16_t kIoBaseUpper = 0x30;
inline constexpr uint16_t kIoLimitUpper = 0x32;
inline constexpr uint16_t kRomBar = 0x38;
inline constexpr uint16_t kBridgeControl = 0x3E;
inline constexpr uint16_t kControlSecondaryBusReset = 1u << 6;
}  // namespace bridge

// The type-1 header's window registers (PCI-to-PCI Bridge 1.2, 3.2.5): the address bits of
// I/O Base/Limit (7:4: address 15:12) and (Prefetchable) Memory Base/Limit (15:4: address
// 31:20), and the read-only low nibbles a port here has: 1h, 32-bit I/O and 64-bit
// prefetchable decoding.
namespace bridge_bits {
inline constexpr uint32_t kIoAddress = 0xF0;
inline constexpr uint32_t kMemoryAddress = 0xFFF0;
inline constexpr uint32_t kIo32 = 0x1;
inline constexpr uint32_t kPrefetch64 = 0x1;
inline constexpr uint64_t kIoGranule = 4 << 10;
inline constexpr uint64_t kMemoryGranule = 1 << 20;
}  // namespace bridge_bits

// The bus numbers a bridge forwards configuration requests for (3.2.5.3..5): type 1 requests
// for `secondary` become type 0 on the secondary bus; those for (secondary, subordinate] pass
// on as type 1; the rest are not the bridge's.
struct BridgeBuses {
  uint8_t primary = 0;
  uint8_t secondary = 0;
  uint8_t subordinate = 0;
  bool Forwards(uint8_t bus) const {
    return secondary != 0 && bus >= secondary && bus <= subordinate;
  }
};

// The windows a bridge forwards memory and I/O requests through to its secondary side (4.2,
// 4.3; a window whose base is above its limit is closed). nullopt: closed.
struct BridgeWindows {
  std::optional<mmio::AddressRange> io;
  std::optional<mmio::AddressRange> memory;    // 32-bit, non-prefetchable, 1 MiB granular
  std::optional<mmio::AddressRange> prefetch;  // 64-bit prefetchable, 1 MiB granular
  bool memory_enabled = false;                 // the bridge's command register: Memory Space
  bool io_enabled = false;                     // and I/O Space enable
  // True when [base, base + size) of memory is forwarded: inside the memory or prefetchable
  // window with Memory Space on (a bridge forwards either window regardless of the BAR's
  // prefetchability, 4.3).
  bool ForwardsMemory(uint64_t base, uint64_t size) const;
};

// The registers above, decoded from the header's bytes (read together, lock-free, by
// PciFunction::bridge_registers()).
struct BridgeRegisters {
  uint16_t command = 0;
  uint32_t buses = 0;     // dword 0x18: primary, secondary, subordinate, latency
  uint32_t io = 0;        // dword 0x1C: I/O base, limit (and secondary status)
  uint32_t memory = 0;    // dword 0x20: memory base, limit
  uint32_t prefetch = 0;  // dword 0x24: prefetchable base, limit
  uint32_t prefetch_base_upper = 0;
  uint32_t prefetch_limit_upper = 0;
  uint32_t io_upper = 0;  // dword 0x30: I/O base and limit upper 16 bits
};
BridgeBuses DecodeBridgeBuses(const BridgeRegisters& r);
BridgeWindows DecodeBridgeWindows(const BridgeRegisters& r);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_BRIDGE_H_
