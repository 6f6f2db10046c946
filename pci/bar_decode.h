// One BAR model: where a function's BARs and expansion ROM decode, read from its registers.
// The vBAR mapper's slots (emulated and VFIO BARs) and a passthrough function's trapping ranges
// follow the same answer; pci/bar_relocation.h applies it.
#ifndef PCIVMM_PCI_BAR_DECODE_H_
#define PCIVMM_PCI_BAR_DECODE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "pci/config_space.h"
#include "pci/device_spec.h"

namespace pcivmm::pci {

inline uint16_t BarOffset(int index) { return static_cast<uint16_t>(cfg::kBar0 + 4 * index); }

// Base address register bits (PCI 3.0, 6.2.5.1) and the expansion ROM base address
// register's (6.2.5.2).
namespace bar_bits {
inline constexpr uint32_t kIoSpace = 0x1;
inline constexpr uint32_t kMem64 = 0x4;  // type 10b in bits 2:1
inline constexpr uint32_t kPrefetchable = 0x8;
inline constexpr uint32_t kMemAddressMask = 0xFFFFFFF0;
inline constexpr uint32_t kIoAddressMask = 0xFFFFFFFC;
inline constexpr uint32_t kRomAddressMask = 0xFFFFF800;
inline constexpr uint32_t kRomEnable = 0x1;
}  // namespace bar_bits

// The registers that decide where a function decodes, read together (one snapshot of the
// emulated registers: a passthrough function's BARs and decode bits are the VMM's).
struct BarRegisters {
  uint16_t command = 0;
  std::array<uint32_t, 6> bars{};
  uint32_t rom = 0;
  // Bit i: 64-bit BAR i had its low dword written and not yet its high dword.
  uint8_t high_pending = 0;
};

// Why a BAR does not decode (kDecoded: it does), checked in this order.
enum class BarDecode : uint8_t {
  kDecoded,
  kDecodeOff,        // the command register's Memory (or I/O) Space bit is 0
  kRomDisabled,      // the expansion ROM's enable bit is 0
  kHighHalfPending,  // a 64-bit BAR's low dword was written, its high dword not yet
  kSizingProbe,      // its address bits read back all ones
  kBridgeClosed,     // a bridge above does not forward it (outside its windows, or the
                     // bridge's Memory Space bit is 0; PCI-to-PCI Bridge 1.2, 4.3)
};
const char* BarDecodeName(BarDecode decode);

inline constexpr int kRomIndex = 6;  // BarPlacement::index of the expansion ROM

// What should be decoded where for one BAR (or the ROM).
struct BarPlacement {
  int index = 0;  // 0..5, or kRomIndex
  BarKind kind = BarKind::kMem32;
  uint64_t size = 0;
  uint64_t address = 0;  // as programmed, type and enable bits stripped
  BarDecode decode = BarDecode::kDecodeOff;

  bool decoded() const { return decode == BarDecode::kDecoded; }
  // The address, when the BAR decodes there.
  std::optional<uint64_t> decoded_at() const {
    return decoded() ? std::optional<uint64_t>(address) : std::nullopt;
  }
};

// PCI 3.0, 6.2.2: Memory Space (bit 1) and I/O Space (bit 0) gate the function's response to
// memory and I/O accesses.
bool DecodeEnabled(BarKind kind, uint16_t command);

// One BAR of the function (bar.index..index+1 for a 64-bit BAR).
BarPlacement DecodeBar(const BarSpec& bar, const BarRegisters& regs);
// The expansion ROM of `rom_size` bytes (a power of two, 2 KiB and up; not 0).
BarPlacement DecodeRom(uint64_t rom_size, const BarRegisters& regs);
// Every BAR of `spec` in its order, then the ROM if it has one.
std::vector<BarPlacement> DecodeBars(const DeviceSpec& spec, const BarRegisters& regs);

// The 64-bit halves after a write of `width` bytes at `offset`: writing a 64-bit BAR's low
// dword leaves it pending until its high dword or the command register is written.
uint8_t NoteBarWrite(const DeviceSpec& spec, uint8_t high_pending, uint16_t offset, uint8_t width);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_BAR_DECODE_H_
