#include "pci/bar_decode.h"

namespace pcivmm::pci {
namespace {

uint64_t BarAddressIn(const BarSpec& bar, const BarRegisters& regs) {
  const auto i = static_cast<size_t>(bar.index);
  if (bar.kind == BarKind::kIo) return regs.bars[i] & bar_bits::kIoAddressMask;
  uint64_t address = regs.bars[i] & bar_bits::kMemAddressMask;
  if (bar.kind == BarKind::kMem64 && i + 1 < regs.bars.size()) {
    address |= uint64_t{regs.bars[i + 1]} << 32;
  }
  return address;
}

// PCI 3.0, 6.2.5.1: "Software saves the original value of the Base Address register, writes
// 0FFFFFFFFh to the register, then reads it back." The device returns 0's in the don't-care
// address bits, so during a probe every writable address bit reads one. "64-bit (memory) Base
// Address registers can be handled the same, except that the second 32 bit register is
// considered an extension of the first (i.e., bits 32-63)."
//
// For a 64-bit BAR the high dword decides: software sizes the halves one after the other
// (Linux restores the low dword before it probes the high one), a high dword of all ones is
// beyond any physical address width, and the low dword alone can be all ones at a real
// address.
bool InSizingProbe(const BarSpec& bar, const BarRegisters& regs) {
  const uint64_t size_mask = ~(bar.size - 1);
  const auto i = static_cast<size_t>(bar.index);
  if (bar.kind == BarKind::kMem64 && i + 1 < regs.bars.size()) {
    const auto high_mask = static_cast<uint32_t>(size_mask >> 32);
    if (high_mask != 0) return (regs.bars[i + 1] & high_mask) == high_mask;
  }
  const uint32_t address_bits =
      bar.kind == BarKind::kIo ? bar_bits::kIoAddressMask : bar_bits::kMemAddressMask;
  const uint32_t low_mask = address_bits & static_cast<uint32_t>(size_mask);
  return low_mask != 0 && (regs.bars[i] & low_mask) == low_mask;
}

bool HighHalfPending(const BarSpec& bar, const BarRegisters& regs) {
  return bar.kind == BarKind::kMem64 && ((regs.high_pending >> bar.index) & 1) != 0;
}

}  // namespace

const char* BarDecodeName(BarDecode decode) {
  switch (decode) {
    case BarDecode::kDecoded:
      return "decoded";
    case BarDecode::kDecodeOff:
      return "decode off";
    case BarDecode::kRomDisabled:
      return "ROM disabled";
    case BarDecode::kHighHalfPending:
      return "high half pending";
    case BarDecode::kSizingProbe:
      return "sizing probe";
    case BarDecode::kBridgeClosed:
      return "bridge window closed";
  }
  return "?";
}

// PCI 3.0, 6.2.2, Command register: "Memory Space - Controls a device's response to Memory
// Space accesses. A value of 0 disables the device response." Bit 0, I/O Space, does the same
// for I/O Space accesses.
bool DecodeEnabled(BarKind kind, uint16_t command) {
  return (command & (kind == BarKind::kIo ? cfg::kCommandIo : cfg::kCommandMemory)) != 0;
}

BarPlacement DecodeBar(const BarSpec& bar, const BarRegisters& regs) {
  BarPlacement p{bar.index, bar.kind, bar.size, BarAddressIn(bar, regs)};
  if (!DecodeEnabled(bar.kind, regs.command)) {
    p.decode = BarDecode::kDecodeOff;
  } else if (HighHalfPending(bar, regs)) {
    p.decode = BarDecode::kHighHalfPending;
  } else if (InSizingProbe(bar, regs)) {
    p.decode = BarDecode::kSizingProbe;
  } else {
    p.decode = BarDecode::kDecoded;
  }
  return p;
}

// PCI 3.0, 6.2.5.2: "Bit 0 in the register is used to control whether or not the device
// accepts accesses to its expansion ROM. ... The Memory Space bit in the Command register has
// precedence over the Expansion ROM enable bit. A device must respond to accesses to its
// expansion ROM only if both the Memory Space bit and the Expansion ROM Base Address Enable
// bit are set to 1." Sizing writes all 1's to the address portion (bits 31:11), as for a BAR.
BarPlacement DecodeRom(uint64_t rom_size, const BarRegisters& regs) {
  BarPlacement p{kRomIndex, BarKind::kMem32, rom_size, regs.rom & bar_bits::kRomAddressMask};
  const uint32_t probe_mask = bar_bits::kRomAddressMask & ~static_cast<uint32_t>(rom_size - 1);
  if (!DecodeEnabled(BarKind::kMem32, regs.command)) {
    p.decode = BarDecode::kDecodeOff;
  } else if ((regs.rom & bar_bits::kRomEnable) == 0) {
    p.decode = BarDecode::kRomDisabled;
  } else if ((regs.rom & probe_mask) == probe_mask) {
    p.decode = BarDecode::kSizingProbe;
  } else {
    p.decode = BarDecode::kDecoded;
  }
  return p;
}

std::vector<BarPlacement> DecodeBars(const DeviceSpec& spec, const BarRegisters& regs) {
  std::vector<BarPlacement> out;
  out.reserve(spec.bars.size() + 1);
  for (const BarSpec& b : spec.bars) out.push_back(DecodeBar(b, regs));
  if (spec.rom_size != 0) out.push_back(DecodeRom(spec.rom_size, regs));
  return out;
}

uint8_t NoteBarWrite(const DeviceSpec& spec, uint8_t high_pending, uint16_t offset, uint8_t width) {
  const bool command = AccessTouches(offset, width, cfg::kCommand, 2);
  for (const BarSpec& b : spec.bars) {
    if (b.kind != BarKind::kMem64) continue;
    const auto bit = static_cast<uint8_t>(1u << b.index);
    const uint16_t low = BarOffset(b.index);
    if (AccessTouches(offset, width, low, 4)) high_pending |= bit;
    if (command || AccessTouches(offset, width, low + 4u, 4))
      high_pending &= static_cast<uint8_t>(~bit);
  }
  return high_pending;
}

}  // namespace pcivmm::pci
