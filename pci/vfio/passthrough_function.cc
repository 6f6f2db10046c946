#include "pci/vfio/passthrough_function.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_format.h"
#include "pci/le_bytes.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm {
namespace {

// PCI 3.0, 6.7: "Each capability ... has an 8-bit ID ... and a pointer to the next
// capability"; the list starts at the Capabilities Pointer (34h) when status bit 4 is set.
constexpr uint8_t kCapMsi = 0x05;
constexpr uint8_t kCapMsix = 0x11;
constexpr uint16_t kStatusCapList = 1u << 4;
// PCI 3.0, 6.8.1.3, MSI Message Control: enable (bit 0), Multiple Message Capable (3:1),
// Multiple Message Enable (6:4), 64-bit address capable (7), per-vector masking (8).
constexpr uint16_t kMsiEnable = 0x0001;
constexpr uint16_t kMsiMultipleEnable = 0x0070;
constexpr uint16_t kMsi64Bit = 0x0080;
constexpr uint16_t kMsiPerVectorMask = 0x0100;
constexpr uint16_t kDecodeBits = cfg::kCommandIo | cfg::kCommandMemory;
constexpr uint64_t kPage = 4096;

uint32_t WidthMask(uint8_t width) { return width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1; }

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// A BAR's trapping range on a bus: every access goes to the function.
class BarTrap : public IoDevice {
 public:
  BarTrap(PassthroughFunction* owner, int bar)
      : owner_(owner),
        bar_(bar),
        name_(absl::StrFormat("%s-bar%d", owner->function().spec().name, bar)) {}
  std::string_view Name() const override { return name_; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) override {
    owner_->BarRead(bar_, offset, data);
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) override {
    owner_->BarWrite(bar_, offset, data);
  }

 private:
  PassthroughFunction* const owner_;
  const int bar_;
  const std::string name_;
};

struct Capability {
  uint8_t at;
  uint8_t id;
  uint8_t next;
  uint8_t pointer_at;  // the byte that points at this capability
};

// The device's capability list (at most 48 entries: a loop in it is a broken device).
std::vector<Capability> Capabilities(const PassthroughFunction& p) {
  std::vector<Capability> out;
  if ((p.ReadDevice(cfg::kStatus, 2) & kStatusCapList) == 0) return out;
  uint8_t pointer_at = cfg::kCapabilitiesPointer;
  auto at = static_cast<uint8_t>(p.ReadDevice(pointer_at, 1) & 0xFC);
  while (at >= 0x40 && out.size() < 48) {
    const uint32_t header = p.ReadDevice(at, 2);
    const auto next = static_cast<uint8_t>((header >> 8) & 0xFC);
    out.push_back({at, static_cast<uint8_t>(header & 0xFF), next, pointer_at});
    pointer_at = static_cast<uint8_t>(at + 1);
    at = next;
  }
  return out;
}

}  // namespace

absl::StatusOr<DeviceSpec> PassthroughSpec(const PassthroughDevice& device,
                                           const PassthroughOptions& options) {
  std::array<uint8_t, 64> h{};
  if (device.region(kRegionConfig).size < h.size()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s: config region is %d bytes", device.name(), device.region(kRegionConfig).size));
  }
  PCIVMM_RETURN_IF_ERROR(device.Read(kRegionConfig, 0, absl::MakeSpan(h)));
  auto le = [&h](size_t at, size_t n) { return LoadLe(absl::MakeConstSpan(h).subspan(at, n)); };
  if ((h[cfg::kHeaderType] & 0x7F) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s: header type %#x: only type-0 functions (not bridges) can be passed through",
        device.name(), h[cfg::kHeaderType]));
  }
  DeviceSpec s;
  s.name = options.name.empty() ? "vfio-" + device.name() : options.name;
  s.slot = options.slot;
  s.vendor_id = static_cast<uint16_t>(le(cfg::kVendorId, 2));
  s.device_id = static_cast<uint16_t>(le(cfg::kDeviceId, 2));
  s.revision = h[cfg::kRevisionId];
  s.class_code = le(cfg::kClassCode, 3);
  s.subsystem_vendor_id = static_cast<uint16_t>(le(cfg::kSubsystemVendorId, 2));
  s.subsystem_id = static_cast<uint16_t>(le(cfg::kSubsystemId, 2));
  s.pcie = s.power_management = s.msi = s.msix = false;
  s.ecam_fast_path = options.config_fast_path;
  s.passthrough = true;
  // PCI 3.0, 6.2.5.1: bit 0 set is an I/O BAR; for memory, bits 2:1 = 10b is a 64-bit BAR
  // (it takes the next register too) and bit 3 is prefetchable.
  for (int i = 0; i < 6; ++i) {
    const uint64_t size = device.region(i).size;
    const uint32_t reg = le(BarOffset(i), 4);
    if (size == 0) continue;
    BarSpec b{i, BarKind::kMem32, size, false};
    if ((reg & 1) != 0) {
      b.kind = BarKind::kIo;
    } else {
      b.kind = ((reg >> 1) & 3) == 2 ? BarKind::kMem64 : BarKind::kMem32;
      b.prefetchable = (reg & 8) != 0;
    }
    s.bars.push_back(b);
    if (b.kind == BarKind::kMem64) ++i;
  }
  PCIVMM_RETURN_IF_ERROR(ValidateDeviceSpec(s));
  return s;
}

absl::StatusOr<std::unique_ptr<PassthroughFunction>> PassthroughFunction::Create(
    PassthroughDevice& device, PciBus& bus, PassthroughOptions options) {
  PCIVMM_ASSIGN_OR_RETURN(DeviceSpec spec, PassthroughSpec(device, options));
  std::unique_ptr<PassthroughFunction> p(new PassthroughFunction(device, std::move(options)));
  PCIVMM_ASSIGN_OR_RETURN(p->function_, bus.AddDevice(spec));
  p->config_size_ = static_cast<uint16_t>(
      std::min<uint64_t>(device.region(kRegionConfig).size, kConfigSpaceSize));
  PCIVMM_RETURN_IF_ERROR(p->InitOwnership());
  p->function_->SetPassthrough(p.get());
  return p;
}

PassthroughFunction::~PassthroughFunction() {
  if (intx_.on_device) SetDeviceIntx(false).IgnoreError();
  if (intx_.gsi) router_->RemoveIntxRoute(intx_.trigger.get(), *intx_.gsi).IgnoreError();
  intx_.gsi.reset();  // so that DisableMsi does not turn INTx back on
  if (msi_.vectors != 0) DisableMsi();
  for (Trap& t : traps_) {
    if (t.region >= 0) t.bus->Unregister(t.region).IgnoreError();
  }
  if (function_ != nullptr) function_->SetPassthrough(nullptr);
}

absl::Status PassthroughFunction::InitOwnership() {
  for (uint16_t d = 0; d < config_size_; d += 4) device_bits_[d / 4] = 0xFFFFFFFF;
  device_bits_[cfg::kCommand / 4] &= ~uint32_t{kDecodeBits};
  device_bits_[cfg::kHeaderType / 4] &= ~(0xFFu << 16);
  for (int i = 0; i < 6; ++i) device_bits_[BarOffset(i) / 4] = 0;
  device_bits_[cfg::kRomBar / 4] = 0;
  device_bits_[cfg::kInterruptLine / 4] &= ~0xFFu;
  if (options_.forward_msi) EmulateMsi();
  HideMsix();
  return absl::OkStatus();
}

// The guest programs an emulated MSI capability; the device's real one is programmed by
// the host (VFIO_DEVICE_SET_IRQS) with the host's own message.
void PassthroughFunction::EmulateMsi() {
  const std::vector<Capability> caps = Capabilities(*this);
  auto it =
      std::find_if(caps.begin(), caps.end(), [](const Capability& c) { return c.id == kCapMsi; });
  if (it == caps.end() || device_.IrqCount(IrqKind::kMsi) == 0) return;
  msi_cap_ = it->at;
  const auto control = static_cast<uint16_t>(ReadDevice(msi_cap_ + 2, 2));
  msi_64bit_ = (control & kMsi64Bit) != 0;
  const bool masking = (control & kMsiPerVectorMask) != 0;
  const auto length = static_cast<uint16_t>((msi_64bit_ ? 14 : 10) + (masking ? 10 : 0));
  for (uint16_t b = msi_cap_ + 2; b < msi_cap_ + length && b < config_size_; ++b) {
    device_bits_[b / 4] &= ~(0xFFu << (8 * (b & 3)));
  }
  const auto at = [this](int off) { return static_cast<uint16_t>(msi_cap_ + off); };
  function_->EmulateRegister(at(2), 2, control & ~(kMsiEnable | kMsiMultipleEnable),
                             kMsiEnable | kMsiMultipleEnable);
  function_->EmulateRegister(at(4), 4, 0, 0xFFFFFFFC);
  if (msi_64bit_) function_->EmulateRegister(at(8), 4, 0, 0xFFFFFFFF);
  function_->EmulateRegister(at(msi_64bit_ ? 12 : 8), 2, 0, 0xFFFF);
  if (masking) function_->EmulateRegister(at(msi_64bit_ ? 16 : 12), 4, 0, 0xFFFFFFFF);
}

// MSI-X is not forwarded: the capability is unlinked from the guest's list (the pointer to
// it is emulated and skips it), so a guest driver falls back to MSI or INTx.
void PassthroughFunction::HideMsix() {
  const std::vector<Capability> caps = Capabilities(*this);
  auto it =
      std::find_if(caps.begin(), caps.end(), [](const Capability& c) { return c.id == kCapMsix; });
  if (it == caps.end()) return;
  device_bits_[it->pointer_at / 4] &= ~(0xFFu << (8 * (it->pointer_at & 3)));
  function_->EmulateRegister(it->pointer_at, 1, it->next, 0);
  // PCI 3.0, 6.8.2: Message Control bits 10:0 are the table size N-1; the Table and PBA
  // Offset/BIR registers hold a BAR index in bits 2:0 and a QWORD-aligned offset above. The
  // table has 16 bytes per entry, the PBA a bit per entry in QWORDs.
  const uint32_t entries = (ReadDevice(static_cast<uint16_t>(it->at + 2), 2) & 0x7FF) + 1;
  const uint64_t sizes[2] = {entries * 16ull, (entries + 63) / 64 * 8ull};
  for (int i = 0; i < 2; ++i) {
    const uint32_t reg = ReadDevice(static_cast<uint16_t>(it->at + 4 + 4 * i), 4);
    const uint64_t offset = reg & ~7u;
    msix_ranges_.push_back({static_cast<int>(reg & 7), offset & ~(kPage - 1),
                            (offset + sizes[i] + kPage - 1) & ~(kPage - 1)});
  }
}

// The BAR's mapped areas minus the MSI-X pages.
std::vector<BarPiece> PassthroughFunction::SlotPieces(int bar) const {
  std::vector<BarPiece> pieces;
  for (const MappedArea& a : device_.region(bar).mapped) {
    pieces.push_back({a.offset, a.size, a.host});
  }
  for (const TrappedRange& t : msix_ranges_) {
    if (t.bar != bar) continue;
    std::vector<BarPiece> next;
    for (const BarPiece& p : pieces) {
      const uint64_t end = p.offset + p.size;
      if (t.end <= p.offset || t.begin >= end) {
        next.push_back(p);
        continue;
      }
      if (t.begin > p.offset) next.push_back({p.offset, t.begin - p.offset, p.host});
      if (t.end < end) next.push_back({t.end, end - t.end, p.host + (t.end - p.offset)});
    }
    pieces = std::move(next);
  }
  return pieces;
}

uint32_t PassthroughFunction::DeviceBits(uint16_t dword) const {
  return dword < kConfigSpaceSize ? device_bits_[dword / 4] : 0;
}

uint32_t PassthroughFunction::ReadDevice(uint16_t offset, uint8_t width) const {
  std::array<uint8_t, 4> b{};
  absl::Status st = device_.Read(kRegionConfig, offset, absl::MakeSpan(b.data(), width));
  if (!st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s: config read +%#x: %s", device_.name(), offset, st.ToString());
    return WidthMask(width);
  }
  config_device_reads_.fetch_add(1, std::memory_order_relaxed);
  return LoadLe(absl::MakeConstSpan(b.data(), width));
}

void PassthroughFunction::OnWrite(uint16_t offset, uint8_t width, uint32_t value) {
  const uint32_t mask =
      (DeviceBits(static_cast<uint16_t>(offset & ~3u)) >> (8 * (offset & 3))) & WidthMask(width);
  if (mask != 0) {
    ForwardWrite(offset, width, value, mask);
  } else {
    config_owned_writes_.fetch_add(1, std::memory_order_relaxed);
  }
  if (AccessTouches(offset, width, cfg::kCommand, 2) ||
      AccessTouches(offset, width, cfg::kBar0, 6 * 4)) {
    ReconcileTraps();
  }
  if (msi_cap_ != 0 && AccessTouches(offset, width, msi_cap_, 24)) UpdateMsi();
  if (options_.config_fast_path) Mirror(offset, width);
}

// Bytes with no device bit are not written at all; in the others the device's bits carry
// the guest's value and the VMM-owned bits the VMM's choice.
void PassthroughFunction::ForwardWrite(uint16_t offset, uint8_t width, uint32_t value,
                                       uint32_t mask) {
  for (uint8_t i = 0; i < width; ++i) {
    if (((mask >> (8 * i)) & 0xFF) != 0) continue;
    for (uint8_t j = 0; j < width; ++j) {  // a byte without device bits: split the write
      const uint32_t byte_mask = (mask >> (8 * j)) & 0xFF;
      if (byte_mask != 0) {
        ForwardWrite(static_cast<uint16_t>(offset + j), 1, (value >> (8 * j)) & 0xFF, byte_mask);
      }
    }
    return;
  }
  const uint32_t owned = WidthMask(width) & ~mask;
  const uint32_t v = (value & mask) | (owned != 0 ? RealOwnedValue(offset, width) & owned : 0);
  std::array<uint8_t, 4> b{};
  StoreLe(v, absl::MakeSpan(b.data(), width));
  absl::Status st = device_.Write(kRegionConfig, offset, absl::MakeConstSpan(b.data(), width));
  if (!st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s: config write +%#x: %s", device_.name(), offset, st.ToString());
    return;
  }
  config_device_writes_.fetch_add(1, std::memory_order_relaxed);
}

// The command register's decode bits get what the VMM keeps on the device; other owned bits
// of a written byte keep the device's own value.
uint32_t PassthroughFunction::RealOwnedValue(uint16_t offset, uint8_t width) {
  uint32_t decode_bits = 0;
  uint32_t decode_value = 0;
  if (offset <= cfg::kCommand && cfg::kCommand < offset + width) {
    const int shift = 8 * (cfg::kCommand - offset);
    decode_bits = uint32_t{kDecodeBits} << shift;
    decode_value = uint32_t{real_decode_} << shift;
  }
  const uint32_t owned =
      WidthMask(width) & ~((DeviceBits(static_cast<uint16_t>(offset & ~3u)) >> (8 * (offset & 3))));
  if ((owned & ~decode_bits) == 0) return decode_value;
  return (ReadDevice(offset, width) & ~decode_bits) | decode_value;
}

absl::Status PassthroughFunction::Activate(Bus& mmio, Bus& pio, BarMapper& mapper,
                                           InterruptRouter* router,
                                           std::optional<uint32_t> intx_gsi) {
  router_ = router;
  PCIVMM_RETURN_IF_ERROR(EnableRealDecode());
  const bool has_pin = (ReadDevice(cfg::kInterruptPin, 1) & 0xFF) != 0;
  if (router_ != nullptr && intx_gsi && has_pin && device_.IrqCount(IrqKind::kIntx) != 0) {
    PCIVMM_RETURN_IF_ERROR(RouteIntx(*intx_gsi));
  }
  std::vector<ExternalBar> external;
  for (const BarSpec& b : function_->spec().bars) {
    Trap& t = traps_[static_cast<size_t>(b.index)];
    t.spec = &b;
    t.bus = b.kind == BarKind::kIo ? &pio : &mmio;
    const uint64_t addr = function_->BarAddress(b);
    auto region = t.bus->Register(addr, b.size, std::make_shared<BarTrap>(this, b.index));
    if (region.ok()) {
      t.region = *region;
      t.base.store(addr);
    } else {
      LogLine("W", absl::StrFormat("vfio %s BAR%d: no trapping range yet: %s", device_.name(),
                                   b.index, region.status().ToString()));
    }
    if (b.kind == BarKind::kIo || !options_.mmap_bars) continue;
    std::vector<BarPiece> pieces = SlotPieces(b.index);
    if (!pieces.empty()) external.push_back({b.index, std::move(pieces)});
  }
  PCIVMM_RETURN_IF_ERROR(mapper.AttachExternal(*function_, external));
  if (options_.config_fast_path) {
    for (uint16_t d = 0; d < config_size_; d += 4) function_->MirrorDevice(d);
  }
  return absl::OkStatus();
}

// INTx: the device's line -> VFIO (which masks it as it fires) -> `trigger` -> KVM asserts
// the GSI; the guest's EOI -> KVM deasserts it and signals `resample` -> VFIO unmasks.
absl::Status PassthroughFunction::RouteIntx(uint32_t gsi) {
  intx_.trigger.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  intx_.resample.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!intx_.trigger.valid() || !intx_.resample.valid()) {
    return absl::ErrnoToStatus(errno, "eventfd for INTx");
  }
  PCIVMM_RETURN_IF_ERROR(router_->AddIntxRoute(intx_.trigger.get(), intx_.resample.get(), gsi));
  intx_.gsi = gsi;
  return SetDeviceIntx(true);
}

// VFIO allows one interrupt type at a time: INTx is switched off while MSI is on.
absl::Status PassthroughFunction::SetDeviceIntx(bool on) {
  if (!on) {
    intx_.on_device = false;
    return device_.SetIrqEventfds(IrqKind::kIntx, {});
  }
  const int fds[1] = {intx_.trigger.get()};
  PCIVMM_RETURN_IF_ERROR(device_.SetIrqEventfds(IrqKind::kIntx, fds));
  intx_.on_device = true;
  return device_.SetIntxUnmaskEventfd(intx_.resample.get());
}

// The device decodes its BARs from now on, whatever the guest writes (bhyve's approach):
// slots over its BARs never see a disabled BAR, and the host never zaps and refaults a
// whole BAR for a guest toggle. Bus mastering starts off, as after a reset.
absl::Status PassthroughFunction::EnableRealDecode() {
  for (const BarSpec& b : function_->spec().bars) {
    real_decode_ |= b.kind == BarKind::kIo ? cfg::kCommandIo : cfg::kCommandMemory;
  }
  std::array<uint8_t, 2> b{};
  PCIVMM_RETURN_IF_ERROR(device_.Read(kRegionConfig, cfg::kCommand, absl::MakeSpan(b)));
  const uint32_t command =
      (LoadLe(b) & ~uint32_t{kDecodeBits | cfg::kCommandBusMaster}) | real_decode_;
  StoreLe(command, absl::MakeSpan(b));
  const uint64_t t0 = NowNs();
  PCIVMM_RETURN_IF_ERROR(device_.Write(kRegionConfig, cfg::kCommand, b));
  real_decode_writes_.Add(NowNs() - t0);
  return absl::OkStatus();
}

bool PassthroughFunction::InSizingProbe(const BarSpec& bar) const {
  const uint64_t mask = ~(bar.size - 1) & (bar.kind == BarKind::kIo ? ~0x3ull : ~0xFull);
  uint64_t value = function_->ReadEmulated(BarOffset(bar.index), 4);
  if (bar.kind == BarKind::kMem64) {
    value |= uint64_t{function_->ReadEmulated(static_cast<uint16_t>(BarOffset(bar.index) + 4), 4)}
             << 32;
  } else {
    value |= 0xFFFFFFFF00000000ull;
  }
  return (value & mask) == mask;
}

// Trapping ranges follow a BAR when the guest decodes it at a new address (Linux moves BARs
// with decode off, so the range moves on the decode-on write).
void PassthroughFunction::ReconcileTraps() {
  const auto command = static_cast<uint16_t>(function_->ReadEmulated(cfg::kCommand, 2));
  for (size_t i = 0; i < traps_.size(); ++i) {
    Trap& t = traps_[i];
    if (t.spec == nullptr) continue;
    const uint16_t decode = t.spec->kind == BarKind::kIo ? cfg::kCommandIo : cfg::kCommandMemory;
    if ((command & decode) == 0 || InSizingProbe(*t.spec)) continue;
    const uint64_t addr = function_->BarAddress(*t.spec);
    if (t.region >= 0 && addr == t.base.load()) continue;
    absl::Status st;
    if (t.region >= 0) {
      st = t.bus->Move(t.region, addr);
    } else {
      auto region =
          t.bus->Register(addr, t.spec->size, std::make_shared<BarTrap>(this, static_cast<int>(i)));
      st = region.status();
      if (region.ok()) t.region = *region;
    }
    if (st.ok()) {
      t.base.store(addr);
    } else {
      PCIVMM_LOG_GUEST("vfio %s BAR%d at %#x: trapping range not moved: %s", device_.name(), i,
                       addr, st.ToString());
    }
  }
}

bool PassthroughFunction::Decoded(int bar) const {
  const Trap& t = traps_[static_cast<size_t>(bar)];
  if (t.spec == nullptr) return false;
  const uint16_t decode = t.spec->kind == BarKind::kIo ? cfg::kCommandIo : cfg::kCommandMemory;
  return (function_->ReadEmulated(cfg::kCommand, 2) & decode) != 0 &&
         function_->BarAddress(*t.spec) == t.base.load();
}

void PassthroughFunction::BarRead(int bar, uint64_t offset, absl::Span<uint8_t> data) {
  if (!Decoded(bar)) {
    std::fill(data.begin(), data.end(), 0xFF);
    bar_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (absl::Status st = device_.Read(bar, offset, data); !st.ok()) {
    std::fill(data.begin(), data.end(), 0xFF);
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s BAR%d read +%#x: %s", device_.name(), bar, offset, st.ToString());
    return;
  }
  bar_reads_.fetch_add(1, std::memory_order_relaxed);
}

void PassthroughFunction::BarWrite(int bar, uint64_t offset, absl::Span<const uint8_t> data) {
  if (!Decoded(bar)) {
    bar_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (absl::Status st = device_.Write(bar, offset, data); !st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s BAR%d write +%#x: %s", device_.name(), bar, offset, st.ToString());
    return;
  }
  bar_writes_.fetch_add(1, std::memory_order_relaxed);
}

// PCI 3.0, 6.8.1.3: "Multiple Message Enable ... the number of allocated vectors" (a power
// of two), and the function "is permitted to modify the low order bits of the message data"
// to pick one. Per-vector mask bits are emulated but not applied.
void PassthroughFunction::UpdateMsi() {
  const auto at = [this](int off) { return static_cast<uint16_t>(msi_cap_ + off); };
  const uint32_t control = function_->ReadEmulated(at(2), 2);
  uint64_t address = function_->ReadEmulated(at(4), 4);
  if (msi_64bit_) address |= uint64_t{function_->ReadEmulated(at(8), 4)} << 32;
  const uint32_t data = function_->ReadEmulated(at(msi_64bit_ ? 12 : 8), 2);
  const uint32_t wanted = 1u << ((control & kMsiMultipleEnable) >> 4);
  const uint32_t vectors =
      (control & kMsiEnable) != 0 ? std::min(wanted, device_.IrqCount(IrqKind::kMsi)) : 0;
  if (vectors != msi_.vectors) {
    if (msi_.vectors != 0) DisableMsi();
    msi_.address = address;
    msi_.data = data;
    if (vectors != 0) {
      if (absl::Status st = EnableMsi(vectors); !st.ok()) {
        PCIVMM_LOG_GUEST("vfio %s: MSI not forwarded: %s", device_.name(), st.ToString());
      }
    }
    return;
  }
  if (vectors == 0 || (address == msi_.address && data == msi_.data)) return;
  msi_.address = address;
  msi_.data = data;
  for (uint32_t i = 0; i < msi_.routes.size(); ++i) {
    const uint32_t d = (data & ~(vectors - 1)) | i;
    if (absl::Status st = router_->UpdateMsiRoute(msi_.routes[i], address, d); !st.ok()) {
      PCIVMM_LOG_GUEST("vfio %s: MSI route update: %s", device_.name(), st.ToString());
    }
  }
}

absl::Status PassthroughFunction::EnableMsi(uint32_t vectors) {
  msi_enables_.fetch_add(1, std::memory_order_relaxed);
  if (router_ == nullptr) {
    return absl::FailedPreconditionError("the machine has no interrupt controller");
  }
  std::vector<int> fds;
  for (uint32_t i = 0; i < vectors; ++i) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
    const uint32_t d = (msi_.data & ~(vectors - 1)) | i;
    auto route = router_->AddMsiRoute(fd.get(), msi_.address, d);
    fds.push_back(fd.get());
    msi_.fds.push_back(std::move(fd));
    if (!route.ok()) {
      DisableMsi();
      return route.status();
    }
    msi_.routes.push_back(*route);
  }
  msi_.vectors = vectors;
  if (intx_.on_device) SetDeviceIntx(false).IgnoreError();
  if (absl::Status st = device_.SetIrqEventfds(IrqKind::kMsi, fds); !st.ok()) {
    DisableMsi();
    return st;
  }
  msi_on_.store(true);
  return absl::OkStatus();
}

void PassthroughFunction::DisableMsi() {
  if (msi_.vectors != 0) device_.SetIrqEventfds(IrqKind::kMsi, {}).IgnoreError();
  for (int route : msi_.routes) router_->RemoveMsiRoute(route).IgnoreError();
  msi_.routes.clear();
  msi_.fds.clear();
  msi_.vectors = 0;
  msi_on_.store(false);
  if (intx_.gsi && !intx_.on_device) {
    if (absl::Status st = SetDeviceIntx(true); !st.ok()) {
      PCIVMM_LOG_GUEST("vfio %s: INTx not restored: %s", device_.name(), st.ToString());
    }
  }
}

bool PassthroughFunction::msi_enabled() const { return msi_on_.load(); }

void PassthroughFunction::Mirror(uint16_t offset, uint8_t width) {
  (void)width;  // accesses never cross a dword
  function_->MirrorDevice(static_cast<uint16_t>(offset & ~3u));
  function_->MirrorDevice(cfg::kCommand);
}

PassthroughFunction::Counters PassthroughFunction::counters() const {
  Counters c;
  c.config_device_reads = config_device_reads_.load(std::memory_order_relaxed);
  c.config_device_writes = config_device_writes_.load(std::memory_order_relaxed);
  c.config_owned_writes = config_owned_writes_.load(std::memory_order_relaxed);
  c.bar_reads = bar_reads_.load(std::memory_order_relaxed);
  c.bar_writes = bar_writes_.load(std::memory_order_relaxed);
  c.bar_dropped = bar_dropped_.load(std::memory_order_relaxed);
  c.device_errors = device_errors_.load(std::memory_order_relaxed);
  c.msi_enables = msi_enables_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace pcivmm
