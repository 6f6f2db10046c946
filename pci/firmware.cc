#include "pci/firmware.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_format.h"
#include "pci/access/ecam_trap.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t k1G = 1ull << 30;

struct Request {
  PciFunction* function;
  const BarSpec* bar;  // nullptr: the expansion ROM
  uint64_t size;
};

// A bump allocator over one window.
class WindowAllocator {
 public:
  WindowAllocator(const char* name, mmio::AddressRange range) : name_(name), range_(range) {}
  // Naturally aligned placement, or nullopt when it does not fit.
  std::optional<uint64_t> Allocate(uint64_t size) {
    const uint64_t at = (next_ + size - 1) & ~(size - 1);
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

std::vector<Request> Collect(PciBus& bus, bool want64, bool want_io) {
  std::vector<Request> out;
  for (PciFunction* f : bus.functions()) {
    for (const BarSpec& b : f->spec().bars) {
      const bool io = b.kind == BarKind::kIo;
      const bool in64 = b.kind == BarKind::kMem64 && b.prefetchable;
      if (io == want_io && (io || in64 == want64)) out.push_back({f, &b, b.size});
    }
    if (!want64 && !want_io && f->spec().rom_size != 0)
      out.push_back({f, nullptr, f->spec().rom_size});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Request& a, const Request& b) { return a.size > b.size; });
  return out;
}

void Place(WindowAllocator& window, const std::vector<Request>& requests) {
  for (const Request& r : requests) {
    auto at = window.Allocate(r.size);
    if (!at) continue;
    if (r.bar != nullptr) {
      r.function->ProgramBar(*r.bar, *at);
    } else {
      r.function->ProgramRom(*at);
    }
  }
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
  WindowAllocator mem32("mem32", windows.mem32);
  WindowAllocator mem64("mem64", windows.mem64);
  WindowAllocator io("io", windows.io);
  Place(mem64, Collect(bus, /*want64=*/true, /*want_io=*/false));
  Place(mem32, Collect(bus, /*want64=*/false, /*want_io=*/false));
  Place(io, Collect(bus, /*want64=*/false, /*want_io=*/true));
  for (const auto* w : {&mem64, &mem32, &io}) {
    if (absl::Status st = w->Check(); !st.ok()) return st;
  }
  uint16_t command = 0;
  if (hand_off.memory_decode) command |= cfg::kCommandMemory;
  if (hand_off.io_decode) command |= cfg::kCommandIo;
  for (PciFunction* f : bus.functions()) f->SetCommand(command);
  return absl::OkStatus();
}

}  // namespace pcivmm::pci
