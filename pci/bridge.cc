#include "pci/bridge.h"

#include "pci/config_space.h"

namespace pcivmm::pci {
namespace {

using bridge_bits::kIoAddress;
using bridge_bits::kIoGranule;
using bridge_bits::kMemoryAddress;
using bridge_bits::kMemoryGranule;

uint32_t Byte(uint32_t dword, unsigned index) { return (dword >> (8 * index)) & 0xFF; }
uint32_t Half(uint32_t dword, unsigned index) { return (dword >> (16 * index)) & 0xFFFF; }

// PCI-to-PCI Bridge 1.2, 4.2 and 4.3: the bridge forwards an address when base <= address <=
// limit; software closes a window by programming its limit below its base. AddressRange is
// half-open with an end that fits in 64 bits, so a window reaching 2^64 - 1 loses its last byte (no
// physical address is that high).
std::optional<mmio::AddressRange> Window(uint64_t base, uint64_t limit) {
  if (base > limit) return std::nullopt;
  if (limit == UINT64_MAX) --limit;
  return mmio::AddressRange::Make(base, limit - base + 1);
}

// 3.2.5, I/O Base and I/O Limit: "the bridge assumes that the lower 12 address bits,
// AD[11::00], of the I/O base address ... are zero. Similarly, the bridge assumes that the
// lower 12 address bits ... of the I/O limit address ... are FFFh." With 32-bit decode (low
// nibble 1h) "the I/O Base Upper 16 Bits and the I/O Limit Upper 16 Bits registers hold the
// upper 16 bits (corresponding to AD[31::16])"; with 16-bit decode they are not used.
std::optional<mmio::AddressRange> IoWindow(const BridgeRegisters& r) {
  const uint32_t base_reg = Byte(r.io, 0);
  const uint32_t limit_reg = Byte(r.io, 1);
  const bool io32 = (base_reg & 0xF) == bridge_bits::kIo32;
  const uint64_t base =
      uint64_t{base_reg & kIoAddress} << 8 | (io32 ? uint64_t{Half(r.io_upper, 0)} << 16 : 0);
  const uint64_t limit = (uint64_t{limit_reg & kIoAddress} << 8 | (kIoGranule - 1)) |
                         (io32 ? uint64_t{Half(r.io_upper, 1)} << 16 : 0);
  return Window(base, limit);
}

// 3.2.5, Memory Base and Memory Limit: bits 15:4 are address bits 31:20; "the bridge assumes
// that the lower 20 address bits, AD[19::00], of the memory base address ... are zero.
// Similarly, ... of the memory limit address ... are F FFFFh."
std::optional<mmio::AddressRange> MemoryWindow(const BridgeRegisters& r) {
  const uint64_t base = uint64_t{Half(r.memory, 0) & kMemoryAddress} << 16;
  const uint64_t limit = uint64_t{Half(r.memory, 1) & kMemoryAddress} << 16 | (kMemoryGranule - 1);
  return Window(base, limit);
}

// 3.2.5, Prefetchable Memory Base and Limit: as the memory window; with 64-bit decode (low
// nibble 1h) "the Prefetchable Base Upper 32 Bits and Prefetchable Limit Upper 32 Bits
// registers hold the rest of the 64-bit prefetchable base and limit addresses".
std::optional<mmio::AddressRange> PrefetchWindow(const BridgeRegisters& r) {
  const uint32_t base_reg = Half(r.prefetch, 0);
  const uint32_t limit_reg = Half(r.prefetch, 1);
  const bool mem64 = (base_reg & 0xF) == bridge_bits::kPrefetch64;
  const uint64_t base = uint64_t{base_reg & kMemoryAddress} << 16 |
                        (mem64 ? uint64_t{r.prefetch_base_upper} << 32 : 0);
  const uint64_t limit = (uint64_t{limit_reg & kMemoryAddress} << 16 | (kMemoryGranule - 1)) |
                         (mem64 ? uint64_t{r.prefetch_limit_upper} << 32 : 0);
  return Window(base, limit);
}

}  // namespace

// 3.2.5, Primary, Secondary and Subordinate Bus Number: bytes 0, 1 and 2 of dword 0x18.
BridgeBuses DecodeBridgeBuses(const BridgeRegisters& r) {
  return {static_cast<uint8_t>(Byte(r.buses, 0)), static_cast<uint8_t>(Byte(r.buses, 1)),
          static_cast<uint8_t>(Byte(r.buses, 2))};
}

// The Command register (3.2): Memory Space and I/O Space enable control the bridge's response
// on its primary interface to addresses behind it, i.e. forwarding through the windows.
BridgeWindows DecodeBridgeWindows(const BridgeRegisters& r) {
  BridgeWindows w;
  w.io = IoWindow(r);
  w.memory = MemoryWindow(r);
  w.prefetch = PrefetchWindow(r);
  w.memory_enabled = (r.command & cfg::kCommandMemory) != 0;
  w.io_enabled = (r.command & cfg::kCommandIo) != 0;
  return w;
}

// 4.3: a memory transaction on the primary interface is forwarded when its address is inside
// the memory or the prefetchable window. A range is forwarded only whole: one straddling a
// window's edge is not (part of it would go unanswered behind the bridge).
bool BridgeWindows::ForwardsMemory(uint64_t base, uint64_t size) const {
  if (!memory_enabled) return false;
  return (memory && memory->Contains(base, size)) || (prefetch && prefetch->Contains(base, size));
}

}  // namespace pcivmm::pci
