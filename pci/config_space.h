// One PCI function's configuration space: 4 KiB of registers with per-byte write masks.
#ifndef PCIVMM_PCI_CONFIG_SPACE_H_
#define PCIVMM_PCI_CONFIG_SPACE_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace pcivmm::pci {

inline constexpr size_t kConfigSpaceSize = 4096;  // PCIe extended configuration space
inline constexpr size_t kConventionalConfigSize = 256;

// Type-0 header registers (PCI Local Bus Spec 3.0, 6.1, figure 6-1).
namespace cfg {
inline constexpr uint16_t kVendorId = 0x00;
inline constexpr uint16_t kDeviceId = 0x02;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kRevisionId = 0x08;
inline constexpr uint16_t kClassCode = 0x09;  // 3 bytes: prog-if, subclass, base class
inline constexpr uint16_t kCacheLineSize = 0x0C;
inline constexpr uint16_t kLatencyTimer = 0x0D;
inline constexpr uint16_t kHeaderType = 0x0E;
inline constexpr uint16_t kBar0 = 0x10;
inline constexpr uint16_t kSubsystemVendorId = 0x2C;
inline constexpr uint16_t kSubsystemId = 0x2E;
inline constexpr uint16_t kRomBar = 0x30;
inline constexpr uint16_t kCapabilitiesPointer = 0x34;
inline constexpr uint16_t kInterruptLine = 0x3C;
inline constexpr uint16_t kInterruptPin = 0x3D;
inline constexpr uint16_t kExtendedCapabilities = 0x100;

inline constexpr uint16_t kCommandIo = 1u << 0;
inline constexpr uint16_t kCommandMemory = 1u << 1;
inline constexpr uint16_t kCommandBusMaster = 1u << 2;
inline constexpr uint16_t kCommandSerr = 1u << 8;
inline constexpr uint16_t kCommandIntxDisable = 1u << 10;
inline constexpr uint16_t kStatusCapabilities = 1u << 4;
// Status error bits are RW1C (6.2.3): master/target abort, SERR, parity.
inline constexpr uint16_t kStatusErrorBits = 0xF900;
inline constexpr uint8_t kHeaderTypeMultiFunction = 0x80;
}  // namespace cfg

// True when an access of `width` bytes at `offset` touches any byte of the register
// [reg, reg + reg_width).
constexpr bool AccessTouches(uint32_t offset, uint32_t width, uint32_t reg, uint32_t reg_width) {
  return offset < reg + reg_width && offset + width > reg;
}

// Configuration registers whose bytes live in caller-provided storage (so the ECAM fast path
// can map the same page read-only into the guest: the storage *is* the shadow).
//
// Writes follow the spec's register attributes byte by byte: RO bytes ignore writes, RW bits
// take the written value, RW1C bits clear where a 1 is written. Every store to the storage is
// one aligned atomic 32-bit store and every read one atomic 32-bit load, so Read() needs no
// lock and never sees a torn dword (the guest's shadow reads rely on the same). Mutators
// (Write, Set, Set*Mask, Add*Capability) must be serialised by the caller: PciFunction does.
class ConfigSpace {
 public:
  // `storage` must be kConfigSpaceSize bytes, 4-byte aligned, and outlive this object.
  explicit ConfigSpace(absl::Span<uint8_t> storage);

  // An access the spec allows: 1, 2 or 4 bytes, not crossing a dword, inside 4 KiB.
  static constexpr bool ValidAccess(uint32_t offset, uint32_t width) {
    return (width == 1 || width == 2 || width == 4) && (offset & 3) + width <= 4 &&
           offset + width <= kConfigSpaceSize;
  }

  // Guest-visible access. Callers check ValidAccess first.
  uint32_t Read(uint16_t offset, uint8_t width) const;
  void Write(uint16_t offset, uint8_t width, uint32_t value);

  // Device-model setup: initial values and attributes (little-endian, any width up to 4).
  void Set(uint16_t offset, uint8_t width, uint32_t value);
  void SetWritable(uint16_t offset, uint8_t width, uint32_t mask);
  void SetWriteOneToClear(uint16_t offset, uint8_t width, uint32_t mask);

  // Appends a capability (id, next pointer, then `body`) to the list at 0x34 and returns its
  // offset; 0 when conventional space is full. Sets the status capabilities bit.
  uint8_t AddCapability(uint8_t id, absl::Span<const uint8_t> body);
  // Appends a PCIe extended capability (header: id, version, next) at 0x100 and up.
  uint16_t AddExtendedCapability(uint16_t id, uint8_t version, absl::Span<const uint8_t> body);

  absl::Span<const uint8_t> bytes() const { return bytes_; }

 private:
  uint32_t LoadDword(uint16_t at) const;
  void StoreDword(uint16_t at, uint32_t dword);

  absl::Span<uint8_t> bytes_;
  std::array<uint8_t, kConfigSpaceSize> writable_{};
  std::array<uint8_t, kConfigSpaceSize> w1c_{};
  uint8_t next_cap_ = 0x40;
  uint8_t last_cap_ = 0;
  uint16_t next_ext_cap_ = cfg::kExtendedCapabilities;
  uint16_t last_ext_cap_ = 0;
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_CONFIG_SPACE_H_
