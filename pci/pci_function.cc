#include "pci/pci_function.h"

#include <array>

namespace pcivmm::pci {
namespace {

constexpr uint8_t kCapPowerManagement = 0x01;
constexpr uint8_t kCapMsi = 0x05;
constexpr uint8_t kCapPcie = 0x10;
constexpr uint8_t kCapMsix = 0x11;
constexpr uint16_t kExtCapDeviceSerialNumber = 0x0003;

uint32_t Low32(uint64_t v) { return static_cast<uint32_t>(v); }
uint32_t High32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }

}  // namespace

PciFunction::PciFunction(DeviceSpec spec, absl::Span<uint8_t> storage)
    : spec_(std::move(spec)), config_(storage) {
  absl::MutexLock lock(&mu_);
  InitHeader();
  for (const BarSpec& bar : spec_.bars) InitBar(bar);
  InitCapabilities();
}

void PciFunction::InitHeader() {
  ConfigSpace& c = config_;
  c.Set(cfg::kVendorId, 2, spec_.vendor_id);
  c.Set(cfg::kDeviceId, 2, spec_.device_id);
  c.Set(cfg::kRevisionId, 1, spec_.revision);
  c.Set(cfg::kClassCode, 3, spec_.class_code);
  c.Set(cfg::kSubsystemVendorId, 2, spec_.subsystem_vendor_id);
  c.Set(cfg::kSubsystemId, 2, spec_.subsystem_id);
  c.SetWritable(cfg::kCommand, 2,
                cfg::kCommandIo | cfg::kCommandMemory | cfg::kCommandBusMaster | cfg::kCommandSerr |
                    cfg::kCommandIntxDisable);
  c.SetWriteOneToClear(cfg::kStatus, 2, cfg::kStatusErrorBits);
  c.SetWritable(cfg::kCacheLineSize, 1, 0xFF);
  c.SetWritable(cfg::kLatencyTimer, 1, 0xFF);
  c.SetWritable(cfg::kInterruptLine, 1, 0xFF);
  if (spec_.slot != 0) c.Set(cfg::kInterruptPin, 1, 1);  // INTA#
  if (spec_.rom_size != 0) {
    c.SetWritable(cfg::kRomBar, 4,
                  (bar_bits::kRomAddressMask & ~Low32(spec_.rom_size - 1)) | bar_bits::kRomEnable);
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
  ConfigSpace& c = config_;
  if (spec_.power_management) {
    // PMC: version 3; PMCSR: power state [1:0] RW, PME_En RW, PME_Status RW1C.
    const std::array<uint8_t, 6> pm = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00};
    const uint8_t at = c.AddCapability(kCapPowerManagement, pm);
    c.SetWritable(static_cast<uint16_t>(at + 4), 2, 0x0103);
    c.SetWriteOneToClear(static_cast<uint16_t>(at + 4), 2, 0x8000);
  }
  if (spec_.msi) {
    // Message control: 64-bit capable; enable and multiple-message-enable RW. Then the
    // message address (dword aligned), upper address and data.
    const std::array<uint8_t, 14> msi = {0x80, 0x00};
    const uint8_t at = c.AddCapability(kCapMsi, msi);
    c.SetWritable(static_cast<uint16_t>(at + 2), 2, 0x0071);
    c.SetWritable(static_cast<uint16_t>(at + 4), 4, 0xFFFFFFFC);
    c.SetWritable(static_cast<uint16_t>(at + 8), 4, 0xFFFFFFFF);
    c.SetWritable(static_cast<uint16_t>(at + 12), 2, 0xFFFF);
  }
  if (spec_.pcie) {
    // PCIe capabilities: version 2, endpoint. Device control RW; device status RW1C [3:0].
    std::array<uint8_t, 0x3A> pcie{};
    pcie[0] = 0x02;
    pcie[2] = 0x01;  // device capabilities: max payload 256 bytes
    const uint8_t at = c.AddCapability(kCapPcie, pcie);
    c.SetWritable(static_cast<uint16_t>(at + 8), 2, 0x7FFF);
    c.SetWriteOneToClear(static_cast<uint16_t>(at + 10), 2, 0x000F);
    const std::array<uint8_t, 8> serial = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    c.AddExtendedCapability(kExtCapDeviceSerialNumber, 1, serial);
  }
  if (spec_.msix) {
    // 16 vectors; table at BAR0 offset 0, PBA at BAR0 offset 0x1000. Enable and mask RW.
    const std::array<uint8_t, 10> msix = {0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    const uint8_t at = c.AddCapability(kCapMsix, msix);
    c.SetWritable(static_cast<uint16_t>(at + 2), 2, 0xC000);
  }
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
  const bool bar = AccessTouches(offset, width, cfg::kBar0, 6 * 4);
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
  config_.Set(cfg::kRomBar, 4, Low32(address) & bar_bits::kRomAddressMask);
}

void PciFunction::SetCommand(uint16_t command) {
  absl::MutexLock lock(&mu_);
  config_.Set(cfg::kCommand, 2, command);
}

void PciFunction::SetMultiFunction() {
  absl::MutexLock lock(&mu_);
  config_.Set(cfg::kHeaderType, 1, cfg::kHeaderTypeMultiFunction);
}

BarRegisters PciFunction::bar_registers() const {
  absl::MutexLock lock(&mu_);
  BarRegisters r;
  r.command = static_cast<uint16_t>(config_.Read(cfg::kCommand, 2));
  for (size_t i = 0; i < r.bars.size(); ++i) {
    r.bars[i] = config_.Read(BarOffset(static_cast<int>(i)), 4);
  }
  r.rom = config_.Read(cfg::kRomBar, 4);
  r.high_pending = bar_high_pending_;
  return r;
}

uint64_t PciFunction::BarAddress(const BarSpec& bar) const {
  return DecodeBar(bar, bar_registers()).address;
}

uint64_t PciFunction::RomAddress() const {
  absl::MutexLock lock(&mu_);
  return config_.Read(cfg::kRomBar, 4) & bar_bits::kRomAddressMask;
}

}  // namespace pcivmm::pci
