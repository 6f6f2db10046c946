#include "pci/firmware.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "pci/access/ecam_trap.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t k1G = 1ull << 30;

// Which window a request is placed in: the 64-bit prefetchable one, the 32-bit one (32-bit
// and 64-bit non-prefetchable BARs, ROMs) or I/O; a bridge has one window of each kind.
enum class Space : uint8_t { kMem64, kMem32, kIo };

// PCI-to-PCI Bridge Architecture 1.2, 3.2.5.6 and 3.2.5.8: I/O windows are 4 KiB granular,
// memory windows 1 MiB.
uint64_t Granule(Space s) { return s == Space::kIo ? 4096 : 1ull << 20; }

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

Space SpaceOf(const BarSpec& b) {
  if (b.kind == BarKind::kIo) return Space::kIo;
  return b.kind == BarKind::kMem64 && b.prefetchable ? Space::kMem64 : Space::kMem32;
}

struct Request {
  PciFunction* function;
  const BarSpec* bar;  // nullptr: the expansion ROM, or the bridge's window
  bool window;         // the bridge's window of this space
  uint64_t size;
  uint64_t align;
};

// A bump allocator over one window.
class WindowAllocator {
 public:
  WindowAllocator(const char* name, mmio::AddressRange range) : name_(name), range_(range) {}
  // Placement at `align` (a power of two), or nullopt when it does not fit.
  std::optional<uint64_t> Allocate(uint64_t size, uint64_t align) {
    const uint64_t at = AlignUp(next_, align);
    if (at < next_ || size > range_.end() || at > range_.end() - size) {
      shortfall_ += size;
      return std::nullopt;
    }
    next_ = at + size;
    return at;
  }
  absl::Status Check() const {
    if (shortfall_ == 0) return absl::OkStatus();
    return absl::ResourceExhaustedError(absl::StrFormat(
        "pci %s window [%#x, %#x): BARs do not fit; about %#x more bytes (%d MiB) needed", name_,
        range_.base(), range_.end(), shortfall_, (shortfall_ + (1 << 20) - 1) >> 20));
  }

 private:
  const char* name_;
  mmio::AddressRange range_;
  uint64_t next_ = range_.base();
  uint64_t shortfall_ = 0;
};

// The bytes `requests` (largest alignment first) take when packed from an aligned base.
uint64_t Packed(const std::vector<Request>& requests) {
  uint64_t end = 0;
  for (const Request& r : requests) end = AlignUp(end, r.align) + r.size;
  return end;
}

// What the functions on the secondary bus of `parent` (nullptr: bus 0) need in `space`: their
// BARs and ROMs there, and each bridge's window sized to what its own secondary bus needs
// (recursively), largest alignment first so that packing wastes nothing.
std::vector<Request> Collect(const PciBus& bus, const PciFunction* parent, Space space) {
  std::vector<Request> out;
  for (PciFunction* f : bus.ChildrenOf(parent)) {
    for (const BarSpec& b : f->spec().bars) {
      if (SpaceOf(b) == space) out.push_back({f, &b, false, b.size, b.size});
    }
    const uint64_t rom = f->spec().rom_size;
    if (space == Space::kMem32 && rom != 0) out.push_back({f, nullptr, false, rom, rom});
    if (!f->is_bridge()) continue;
    const std::vector<Request> inner = Collect(bus, f, space);
    if (inner.empty()) continue;
    const uint64_t g = Granule(space);
    out.push_back({f, nullptr, true, AlignUp(Packed(inner), g), std::max(g, inner.front().align)});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Request& a, const Request& b) { return a.align > b.align; });
  return out;
}

using BridgeWindowMap = std::map<PciFunction*, BridgeWindows>;

void SetWindow(BridgeWindows& w, Space space, mmio::AddressRange range) {
  (space == Space::kMem64 ? w.prefetch : space == Space::kMem32 ? w.memory : w.io) = range;
}

// Places `requests` in `window`; a bridge's window is placed like a BAR, then its secondary
// bus's requests inside it.
void Place(const PciBus& bus, WindowAllocator& window, const std::vector<Request>& requests,
           Space space, BridgeWindowMap& bridges) {
  for (const Request& r : requests) {
    auto at = window.Allocate(r.size, r.align);
    if (!at) continue;
    if (r.window) {
      const auto range = *mmio::AddressRange::Make(*at, r.size);
      SetWindow(bridges[r.function], space, range);
      WindowAllocator inner("bridge", range);
      Place(bus, inner, Collect(bus, r.function, space), space, bridges);
    } else if (r.bar != nullptr) {
      r.function->ProgramBar(*r.bar, *at);
    } else {
      r.function->ProgramRom(*at);
    }
  }
}

// Depth first, as firmware numbers buses: a bridge's secondary bus is the next free number,
// its subordinate bus the last number used below it. Returns the next free number.
int NumberBuses(const PciBus& bus, const PciFunction* parent, int primary, int next) {
  for (PciFunction* f : bus.ChildrenOf(parent)) {
    if (!f->is_bridge()) continue;
    const int secondary = next;
    next = NumberBuses(bus, f, secondary, next + 1);
    f->ProgramBridgeBuses({static_cast<uint8_t>(primary), static_cast<uint8_t>(secondary),
                           static_cast<uint8_t>(std::min(next - 1, 255))});
  }
  return next;
}

}  // namespace

absl::StatusOr<PciWindows> DefaultPciWindows(uint64_t ram_end, int phys_bits) {
  if (phys_bits < 36 || phys_bits > 52) {
    return absl::InvalidArgumentError(
        absl::StrFormat("phys_bits: %d is outside 36..52", phys_bits));
  }
  const uint64_t top = 1ull << phys_bits;
  const uint64_t base64 = (std::max(ram_end, 4 * k1G) + k1G - 1) & ~(k1G - 1);
  if (base64 >= top) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ram: RAM ends at %#x, leaving no 64-bit PCI window below 2^%d", ram_end, phys_bits));
  }
  return PciWindows{*mmio::AddressRange::Make(kPciMmio32Base, kEcamBase - kPciMmio32Base),
                    *mmio::AddressRange::Make(base64, top - base64),
                    *mmio::AddressRange::Make(kPciIoBase, kPciIoEnd - kPciIoBase)};
}

absl::Status AssignPciResources(PciBus& bus, const PciWindows& windows, const HandOff& hand_off) {
  const int buses = NumberBuses(bus, nullptr, 0, 1);
  if (buses > bus.bus_count()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "pci.bus_count: %d buses are decoded, but bus 0 and the ports' secondary buses need %d",
        bus.bus_count(), buses));
  }
  WindowAllocator mem64("mem64", windows.mem64);
  WindowAllocator mem32("mem32", windows.mem32);
  WindowAllocator io("io", windows.io);
  BridgeWindowMap bridges;
  Place(bus, mem64, Collect(bus, nullptr, Space::kMem64), Space::kMem64, bridges);
  Place(bus, mem32, Collect(bus, nullptr, Space::kMem32), Space::kMem32, bridges);
  Place(bus, io, Collect(bus, nullptr, Space::kIo), Space::kIo, bridges);
  for (const auto* w : {&mem64, &mem32, &io}) {
    if (absl::Status st = w->Check(); !st.ok()) return st;
  }
  uint16_t command = 0;
  if (hand_off.memory_decode) command |= cfg::kCommandMemory;
  if (hand_off.io_decode) command |= cfg::kCommandIo;
  for (PciFunction* f : bus.functions()) {
    if (!f->is_bridge()) {
      f->SetCommand(command);
      continue;
    }
    // A bridge forwards its windows and its devices' DMA from the start, as firmware leaves it.
    f->ProgramBridgeWindows(bridges[f]);
    f->SetCommand(cfg::kCommandMemory | cfg::kCommandIo | cfg::kCommandBusMaster);
  }
  return absl::OkStatus();
}

}  // namespace pcivmm::pci
