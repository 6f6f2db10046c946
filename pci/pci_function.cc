#include "pci/pci_function.h"

#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "mmio/address_range.h"
#include "pci/bridge.h"
#include "pci/pcie_port.h"

namespace pcivmm::pci {
namespace {

constexpr uint8_t kCapPowerManagement = 0x01;
constexpr uint8_t kCapMsi = 0x05;
constexpr uint8_t kCapMsix = 0x11;
constexpr uint16_t kExtCapDeviceSerialNumber = 0x0003;

uint32_t Low32(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t High32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

// PCI 3.0, 6.1 and 6.2.1-2: the registers both header types share.
void InitCommonHeader(ConfigSpace& c, const DeviceSpec& spec) {
  c.Set(cfg::kVendorId, 2, spec.vendor_id);
  c.Set(cfg::kDeviceId, 2, spec.device_id);
  c.Set(cfg::kRevisionId, 1, spec.revision);
  c.Set(cfg::kClassCode, 3, spec.class_code);
  c.SetWritable(cfg::kCommand, 2,
                cfg::kCommandIo | cfg::kCommandMemory | cfg::kCommandBusMaster | cfg::kCommandSerr |
                    cfg::kCommandIntxDisable);
  c.SetWriteOneToClear(cfg::kStatus, 2, cfg::kStatusErrorBits);
  c.SetWritable(cfg::kCacheLineSize, 1, 0xFF);
  c.SetWritable(cfg::kLatencyTimer, 1, 0xFF);
  c.SetWritable(cfg::kInterruptLine, 1, 0xFF);
}

// PCI 3.0, 6.1, figure 6-1: the type-0 registers (0x2C and 0x30 are the subsystem IDs and the
// expansion ROM here; a type-1 header has its window registers there). The host bridge at
// device 0 has no interrupt pin.
void InitType0Header(ConfigSpace& c, const DeviceSpec& spec) {
  c.Set(cfg::kSubsystemVendorId, 2, spec.subsystem_vendor_id);
  c.Set(cfg::kSubsystemId, 2, spec.subsystem_id);
  if (spec.slot != 0) c.Set(cfg::kInterruptPin, 1, 1);  // INTA#
  if (spec.rom_size != 0) {
    c.SetWritable(cfg::kRomBar, 4,
                  (bar_bits::kRomAddressMask & ~Low32(spec.rom_size - 1)) | bar_bits::kRomEnable);
  }
}

// PMC: version 3; PMCSR: power state [1:0] RW, PME_En RW, PME_Status RW1C.
void AddPowerManagement(ConfigSpace& c) {
  const std::array<uint8_t, 6> pm = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00};
  const uint8_t at = c.AddCapability(kCapPowerManagement, pm);
  c.SetWritable(static_cast<uint16_t>(at + 4), 2, 0x0103);
  c.SetWriteOneToClear(static_cast<uint16_t>(at + 4), 2, 0x8000);
}

// Message control: 64-bit capable; enable and multiple-message-enable RW. Then the message
// address (dword aligned), upper address and data.
void AddMsi(ConfigSpace& c) {
  const std::array<uint8_t, 14> msi = {0x80, 0x00};
  const uint8_t at = c.AddCapability(kCapMsi, msi);
  c.SetWritable(static_cast<uint16_t>(at + 2), 2, 0x0071);
  c.SetWritable(static_cast<uint16_t>(at + 4), 4, 0xFFFFFFFC);
  c.SetWritable(static_cast<uint16_t>(at + 8), 4, 0xFFFFFFFF);
  c.SetWritable(static_cast<uint16_t>(at + 12), 2, 0xFFFF);
}

// 16 vectors; table at BAR0 offset 0, PBA at BAR0 offset 0x1000. Enable and mask RW.
void AddMsix(ConfigSpace& c) {
  const std::array<uint8_t, 10> msix = {0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  const uint8_t at = c.AddCapability(kCapMsix, msix);
  c.SetWritable(static_cast<uint16_t>(at + 2), 2, 0xC000);
}

// The expansion ROM's register: 0x30 in a type-0 header, 0x38 in a type-1 header.
uint16_t RomRegister(bool bridge) { return bridge ? bridge::kRomBar : cfg::kRomBar; }

// How a window's registers hold it: its granularity, the span of its base/limit registers
// without the upper registers, and the end of what it can reach.
struct WindowFormat {
  uint64_t granule;
  uint64_t low_span;
  uint64_t top;
};
constexpr WindowFormat kIoWindow{bridge_bits::kIoGranule, 1 << 16, 1ull << 32};
constexpr WindowFormat kMemoryWindow{bridge_bits::kMemoryGranule, 1ull << 32, 1ull << 32};
constexpr WindowFormat kPrefetchWindow{bridge_bits::kMemoryGranule, 1ull << 32, UINT64_MAX};

// A window's first and last address. PCI-to-PCI Bridge 1.2, 4.2 and 4.3: a limit below the
// base forwards nothing, so a closed window (nullopt, or one beyond what the registers reach)
// is the highest base and the lowest limit of the base/limit registers.
struct Bounds {
  uint64_t base;
  uint64_t limit;
};
Bounds WindowBounds(const std::optional<mmio::AddressRange>& w, const WindowFormat& f) {
  if (!w || w->end() > f.top) return {f.low_span - f.granule, f.granule - 1};
  return {w->base(), w->end() - 1};
}

// The inverse of DecodeBridgeWindows (pci/bridge.cc): a window's registers hold address bits
// 15:12 (I/O, 4 KiB granular) or 31:20 (memory, 1 MiB granular) in bits 7:4 or 15:4, the upper
// bits in the upper registers; a range off the granularity is widened to it. The low nibbles
// (32-bit I/O, 64-bit prefetchable) are kept.
void SetIoWindow(ConfigSpace& c, const std::optional<mmio::AddressRange>& w) {
  const Bounds b = WindowBounds(w, kIoWindow);
  c.Set(bridge::kIoBase, 1,
        static_cast<uint32_t>(b.base >> 8 & bridge_bits::kIoAddress) | bridge_bits::kIo32);
  c.Set(bridge::kIoLimit, 1,
        static_cast<uint32_t>(b.limit >> 8 & bridge_bits::kIoAddress) | bridge_bits::kIo32);
  c.Set(bridge::kIoBaseUpper, 2, static_cast<uint32_t>(b.base >> 16));
  c.Set(bridge::kIoLimitUpper, 2, static_cast<uint32_t>(b.limit >> 16));
}

void SetMemoryWindow(ConfigSpace& c, const std::optional<mmio::AddressRange>& w) {
  const Bounds b = WindowBounds(w, kMemoryWindow);
  c.Set(bridge::kMemoryBase, 2, static_cast<uint32_t>(b.base >> 16 & bridge_bits::kMemoryAddress));
  c.Set(bridge::kMemoryLimit, 2,
        static_cast<uint32_t>(b.limit >> 16 & bridge_bits::kMemoryAddress));
}

void SetPrefetchWindow(ConfigSpace& c, const std::optional<mmio::AddressRange>& w) {
  const Bounds b = WindowBounds(w, kPrefetchWindow);
  c.Set(
      bridge::kPrefetchBase, 2,
      static_cast<uint32_t>(b.base >> 16 & bridge_bits::kMemoryAddress) | bridge_bits::kPrefetch64);
  c.Set(bridge::kPrefetchLimit, 2,
        static_cast<uint32_t>(b.limit >> 16 & bridge_bits::kMemoryAddress) |
            bridge_bits::kPrefetch64);
  c.Set(bridge::kPrefetchBaseUpper, 4, High32(b.base));
  c.Set(bridge::kPrefetchLimitUpper, 4, High32(b.limit));
}

}  // namespace

PciFunction::PciFunction(DeviceSpec spec, absl::Span<uint8_t> storage)
    : spec_(std::move(spec)), config_(storage) {
  absl::MutexLock lock(&mu_);
  InitHeader();
  for (const BarSpec& bar : spec_.bars) InitBar(bar);
  InitCapabilities();
}

// A port is a PCI-to-PCI bridge with a type-1 header (pci/pcie_port.h); anything else has a
// type-0 header.
void PciFunction::InitHeader() {
  InitCommonHeader(config_, spec_);
  if (is_bridge()) {
    InitType1Header(config_);
  } else {
    InitType0Header(config_, spec_);
  }
}

// PCI 3.0, 6.2.5.1: "software ... writing a value of all 1's to the register, then reading
// the value back ... The device will return 0's in all don't-care address bits, effectively
// specifying the address space required." So the address bits below the size are read-only
// zero, the type bits are read-only, and the rest is writable.
void PciFunction::InitBar(const BarSpec& bar) {
  ConfigSpace& c = config_;
  const uint16_t off = BarOffset(bar.index);
  const uint64_t size_mask = ~(bar.size - 1);
  if (bar.kind == BarKind::kIo) {
    c.Set(off, 4, bar_bits::kIoSpace);
    c.SetWritable(off, 4, bar_bits::kIoAddressMask & Low32(size_mask));
    return;
  }
  const uint32_t type = (bar.kind == BarKind::kMem64 ? bar_bits::kMem64 : 0) |
                        (bar.prefetchable ? bar_bits::kPrefetchable : 0);
  c.Set(off, 4, type);
  c.SetWritable(off, 4, bar_bits::kMemAddressMask & Low32(size_mask));
  if (bar.kind == BarKind::kMem64)
    c.SetWritable(static_cast<uint16_t>(off + 4), 4, High32(size_mask));
}

void PciFunction::InitCapabilities() {
  if (spec_.power_management) AddPowerManagement(config_);
  if (spec_.msi) AddMsi(config_);
  if (spec_.pcie) {
    AddPcieCapability(config_, spec_);
    const std::array<uint8_t, 8> serial = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    config_.AddExtendedCapability(kExtCapDeviceSerialNumber, 1, serial);
  }
  if (spec_.msix) AddMsix(config_);
}

// Lock-free: ConfigSpace reads are atomic dword loads (see config_space.h). A read racing a
// write sees the register before or after it, as on a real bus.
uint32_t PciFunction::Read(uint16_t offset, uint8_t width) const {
  const uint32_t emulated = config_.Read(offset, width);
  if (passthrough_ == nullptr) return emulated;
  const uint32_t mask =
      (passthrough_->DeviceBits(static_cast<uint16_t>(offset & ~3u)) >> (8 * (offset & 3))) &
      (width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1);
  if (mask == 0) return emulated;
  return (emulated & ~mask) | (passthrough_->ReadDevice(offset, width) & mask);
}

Bdf PciFunction::address() const {
  const auto bus =
      static_cast<uint8_t>(parent_ != nullptr ? parent_->Read(bridge::kSecondaryBus, 1) : 0);
  return {bus, static_cast<uint8_t>(spec_.slot), static_cast<uint8_t>(spec_.function)};
}

uint32_t PciFunction::ReadEmulated(uint16_t offset, uint8_t width) const {
  return config_.Read(offset, width);
}

void PciFunction::Write(uint16_t offset, uint8_t width, uint32_t value) {
  absl::MutexLock write_lock(&write_mu_);
  {
    absl::MutexLock lock(&mu_);
    config_.Write(offset, width, value);
    bar_high_pending_ = NoteBarWrite(spec_, bar_high_pending_, offset, width);
  }
  if (passthrough_ != nullptr) passthrough_->OnWrite(offset, width, value);
  const bool command = AccessTouches(offset, width, cfg::kCommand, 2);
  // A type-0 header's BARs; a bridge's BARs, bus numbers and windows (0x10..0x33).
  const bool bar = AccessTouches(offset, width, cfg::kBar0, is_bridge() ? 0x24 : 6 * 4);
  if (observer_ != nullptr && (command || bar)) observer_->OnConfigWrite(*this, offset, width);
}

void PciFunction::SetWriteObserver(ConfigWriteObserver* observer) {
  absl::MutexLock write_lock(&write_mu_);
  observer_ = observer;
}

void PciFunction::SetPassthrough(ConfigPassthrough* passthrough) { passthrough_ = passthrough; }

void PciFunction::EmulateRegister(uint16_t offset, uint8_t width, uint32_t value,
                                  uint32_t writable) {
  absl::MutexLock lock(&mu_);
  config_.Set(offset, width, value);
  config_.SetWritable(offset, width, writable);
}

void PciFunction::MirrorDevice(uint16_t dword) {
  if (passthrough_ == nullptr) return;
  const uint32_t mask = passthrough_->DeviceBits(dword);
  if (mask == 0) return;
  const uint32_t device = passthrough_->ReadDevice(dword, 4);
  absl::MutexLock lock(&mu_);
  config_.Set(dword, 4, (config_.Read(dword, 4) & ~mask) | (device & mask));
}

void PciFunction::ProgramBar(const BarSpec& bar, uint64_t address) {
  absl::MutexLock lock(&mu_);
  const uint16_t off = BarOffset(bar.index);
  const uint32_t type_bits = config_.Read(off, 4) & (bar.kind == BarKind::kIo ? 0x3 : 0xF);
  config_.Set(off, 4, Low32(address) | type_bits);
  if (bar.kind == BarKind::kMem64) config_.Set(static_cast<uint16_t>(off + 4), 4, High32(address));
}

void PciFunction::ProgramRom(uint64_t address) {
  absl::MutexLock lock(&mu_);
  config_.Set(RomRegister(is_bridge()), 4, Low32(address) & bar_bits::kRomAddressMask);
}

void PciFunction::SetCommand(uint16_t command) {
  absl::MutexLock lock(&mu_);
  config_.Set(cfg::kCommand, 2, command);
}

// PCI 3.0, 6.2.1: bit 7 of Header Type; bits 6:0 keep the layout (00h or, for a bridge, 01h).
void PciFunction::SetMultiFunction() {
  absl::MutexLock lock(&mu_);
  config_.Set(cfg::kHeaderType, 1,
              config_.Read(cfg::kHeaderType, 1) | cfg::kHeaderTypeMultiFunction);
}

BarRegisters PciFunction::bar_registers() const {
  absl::MutexLock lock(&mu_);
  BarRegisters r;
  r.command = static_cast<uint16_t>(config_.Read(cfg::kCommand, 2));
  // A type-1 header has BAR0 and BAR1 only; its bus numbers and windows follow them.
  const size_t bars = is_bridge() ? 2 : r.bars.size();
  for (size_t i = 0; i < bars; ++i) r.bars[i] = config_.Read(BarOffset(static_cast<int>(i)), 4);
  r.rom = config_.Read(RomRegister(is_bridge()), 4);
  r.high_pending = bar_high_pending_;
  return r;
}

uint64_t PciFunction::BarAddress(const BarSpec& bar) const {
  return DecodeBar(bar, bar_registers()).address;
}

uint64_t PciFunction::RomAddress() const {
  absl::MutexLock lock(&mu_);
  return config_.Read(RomRegister(is_bridge()), 4) & bar_bits::kRomAddressMask;
}

// Each dword is one atomic load (config_space.h); the dwords are not one snapshot, as a guest
// write of one register races a read of another on a real bus too.
BridgeRegisters PciFunction::bridge_registers() const {
  if (!is_bridge()) return {};
  BridgeRegisters r;
  r.command = static_cast<uint16_t>(ReadEmulated(cfg::kCommand, 2));
  r.buses = ReadEmulated(bridge::kPrimaryBus, 4);
  r.io = ReadEmulated(bridge::kIoBase, 4);
  r.memory = ReadEmulated(bridge::kMemoryBase, 4);
  r.prefetch = ReadEmulated(bridge::kPrefetchBase, 4);
  r.prefetch_base_upper = ReadEmulated(bridge::kPrefetchBaseUpper, 4);
  r.prefetch_limit_upper = ReadEmulated(bridge::kPrefetchLimitUpper, 4);
  r.io_upper = ReadEmulated(bridge::kIoBaseUpper, 4);
  return r;
}

void PciFunction::ProgramBridgeBuses(const BridgeBuses& buses) {
  absl::MutexLock lock(&mu_);
  config_.Set(
      bridge::kPrimaryBus, 3,
      uint32_t{buses.primary} | uint32_t{buses.secondary} << 8 | uint32_t{buses.subordinate} << 16);
}

void PciFunction::ProgramBridgeWindows(const BridgeWindows& windows) {
  absl::MutexLock lock(&mu_);
  SetIoWindow(config_, windows.io);
  SetMemoryWindow(config_, windows.memory);
  SetPrefetchWindow(config_, windows.prefetch);
}

}  // namespace pcivmm::pci
