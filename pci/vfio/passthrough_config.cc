#include "pci/vfio/passthrough_config.h"

#include <algorithm>
#include <chrono>

#include "pci/le_bytes.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::vfio {
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
constexpr uint16_t kDecodeBits = pci::cfg::kCommandIo | pci::cfg::kCommandMemory;
constexpr uint64_t kPage = 4096;

uint32_t WidthMask(uint8_t width) { return width >= 4 ? 0xFFFFFFFFu : (1u << (8 * width)) - 1; }

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

struct Capability {
  uint8_t at;
  uint8_t id;
  uint8_t next;
  uint8_t pointer_at;  // the byte that points at this capability
};

// The device's capability list (at most 48 entries: a loop in it is a broken device).
std::vector<Capability> Capabilities(const PassthroughConfig& c) {
  std::vector<Capability> out;
  if ((c.ReadDevice(pci::cfg::kStatus, 2) & kStatusCapList) == 0) return out;
  uint8_t pointer_at = pci::cfg::kCapabilitiesPointer;
  auto at = static_cast<uint8_t>(c.ReadDevice(pointer_at, 1) & 0xFC);
  while (at >= 0x40 && out.size() < 48) {
    const uint32_t header = c.ReadDevice(at, 2);
    const auto next = static_cast<uint8_t>((header >> 8) & 0xFC);
    out.push_back({at, static_cast<uint8_t>(header & 0xFF), next, pointer_at});
    pointer_at = static_cast<uint8_t>(at + 1);
    at = next;
  }
  return out;
}

std::vector<Capability>::const_iterator FindCapability(const std::vector<Capability>& caps,
                                                       uint8_t id) {
  return std::find_if(caps.begin(), caps.end(), [id](const Capability& c) { return c.id == id; });
}

}  // namespace

void PassthroughConfig::Init(pci::PciFunction& function, bool forward_msi) {
  for (uint16_t d = 0; d < config_size_; d += 4) device_bits_[d / 4] = 0xFFFFFFFF;
  device_bits_[pci::cfg::kCommand / 4] &= ~uint32_t{kDecodeBits};
  device_bits_[pci::cfg::kHeaderType / 4] &= ~(0xFFu << 16);
  for (int i = 0; i < 6; ++i) device_bits_[pci::BarOffset(i) / 4] = 0;
  device_bits_[pci::cfg::kRomBar / 4] = 0;
  device_bits_[pci::cfg::kInterruptLine / 4] &= ~0xFFu;
  if (forward_msi) EmulateMsi(function);
  HideMsix(function);
}

// The guest programs an emulated MSI capability; the device's real one is programmed by
// the host (VFIO_DEVICE_SET_IRQS) with the host's own message.
void PassthroughConfig::EmulateMsi(pci::PciFunction& function) {
  const std::vector<Capability> caps = Capabilities(*this);
  auto it = FindCapability(caps, kCapMsi);
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
  function.EmulateRegister(at(2), 2, control & ~(kMsiEnable | kMsiMultipleEnable),
                           kMsiEnable | kMsiMultipleEnable);
  function.EmulateRegister(at(4), 4, 0, 0xFFFFFFFC);
  if (msi_64bit_) function.EmulateRegister(at(8), 4, 0, 0xFFFFFFFF);
  function.EmulateRegister(at(msi_64bit_ ? 12 : 8), 2, 0, 0xFFFF);
  if (masking) function.EmulateRegister(at(msi_64bit_ ? 16 : 12), 4, 0, 0xFFFFFFFF);
}

// MSI-X is not forwarded: the capability is unlinked from the guest's list (the pointer to
// it is emulated and skips it), so a guest driver falls back to MSI or INTx.
void PassthroughConfig::HideMsix(pci::PciFunction& function) {
  const std::vector<Capability> caps = Capabilities(*this);
  auto it = FindCapability(caps, kCapMsix);
  if (it == caps.end()) return;
  device_bits_[it->pointer_at / 4] &= ~(0xFFu << (8 * (it->pointer_at & 3)));
  function.EmulateRegister(it->pointer_at, 1, it->next, 0);
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

// The device decodes its BARs from now on, whatever the guest writes (bhyve's approach):
// slots over its BARs never see a disabled BAR, and the host never zaps and refaults a
// whole BAR for a guest toggle. Bus mastering starts off, as after a reset.
absl::Status PassthroughConfig::EnableRealDecode(const pci::DeviceSpec& spec) {
  for (const pci::BarSpec& b : spec.bars) {
    real_decode_ |= b.kind == pci::BarKind::kIo ? pci::cfg::kCommandIo : pci::cfg::kCommandMemory;
  }
  std::array<uint8_t, 2> b{};
  PCIVMM_RETURN_IF_ERROR(device_.Read(kRegionConfig, pci::cfg::kCommand, absl::MakeSpan(b)));
  const uint32_t command =
      (pci::LoadLe(b) & ~uint32_t{kDecodeBits | pci::cfg::kCommandBusMaster}) | real_decode_;
  pci::StoreLe(command, absl::MakeSpan(b));
  const uint64_t t0 = NowNs();
  PCIVMM_RETURN_IF_ERROR(device_.Write(kRegionConfig, pci::cfg::kCommand, b));
  real_decode_writes_.Add(NowNs() - t0);
  return absl::OkStatus();
}

uint32_t PassthroughConfig::DeviceBits(uint16_t dword) const {
  return dword < pci::kConfigSpaceSize ? device_bits_[dword / 4] : 0;
}

uint32_t PassthroughConfig::ReadDevice(uint16_t offset, uint8_t width) const {
  std::array<uint8_t, 4> b{};
  absl::Status st = device_.Read(kRegionConfig, offset, absl::MakeSpan(b.data(), width));
  if (!st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s: config read +%#x: %s", device_.name(), offset, st.ToString());
    return WidthMask(width);
  }
  device_reads_.fetch_add(1, std::memory_order_relaxed);
  return pci::LoadLe(absl::MakeConstSpan(b.data(), width));
}

void PassthroughConfig::ForwardWrite(uint16_t offset, uint8_t width, uint32_t value) {
  const uint32_t mask =
      (DeviceBits(static_cast<uint16_t>(offset & ~3u)) >> (8 * (offset & 3))) & WidthMask(width);
  if (mask != 0) {
    Forward(offset, width, value, mask);
  } else {
    owned_writes_.fetch_add(1, std::memory_order_relaxed);
  }
}

// Bytes with no device bit are not written at all; in the others the device's bits carry
// the guest's value and the VMM-owned bits the VMM's choice.
void PassthroughConfig::Forward(uint16_t offset, uint8_t width, uint32_t value, uint32_t mask) {
  for (uint8_t i = 0; i < width; ++i) {
    if (((mask >> (8 * i)) & 0xFF) != 0) continue;
    for (uint8_t j = 0; j < width; ++j) {  // a byte without device bits: split the write
      const uint32_t byte_mask = (mask >> (8 * j)) & 0xFF;
      if (byte_mask != 0) {
        Forward(static_cast<uint16_t>(offset + j), 1, (value >> (8 * j)) & 0xFF, byte_mask);
      }
    }
    return;
  }
  const uint32_t owned = WidthMask(width) & ~mask;
  const uint32_t v = (value & mask) | (owned != 0 ? RealOwnedValue(offset, width) & owned : 0);
  std::array<uint8_t, 4> b{};
  pci::StoreLe(v, absl::MakeSpan(b.data(), width));
  absl::Status st = device_.Write(kRegionConfig, offset, absl::MakeConstSpan(b.data(), width));
  if (!st.ok()) {
    device_errors_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("vfio %s: config write +%#x: %s", device_.name(), offset, st.ToString());
    return;
  }
  device_writes_.fetch_add(1, std::memory_order_relaxed);
}

// The command register's decode bits get what the VMM keeps on the device; other owned bits
// of a written byte keep the device's own value.
uint32_t PassthroughConfig::RealOwnedValue(uint16_t offset, uint8_t width) {
  uint32_t decode_bits = 0;
  uint32_t decode_value = 0;
  if (offset <= pci::cfg::kCommand && pci::cfg::kCommand < offset + width) {
    const int shift = 8 * (pci::cfg::kCommand - offset);
    decode_bits = uint32_t{kDecodeBits} << shift;
    decode_value = uint32_t{real_decode_} << shift;
  }
  const uint32_t owned =
      WidthMask(width) & ~((DeviceBits(static_cast<uint16_t>(offset & ~3u)) >> (8 * (offset & 3))));
  if ((owned & ~decode_bits) == 0) return decode_value;
  return (ReadDevice(offset, width) & ~decode_bits) | decode_value;
}

PassthroughConfig::Counters PassthroughConfig::counters() const {
  Counters c;
  c.device_reads = device_reads_.load(std::memory_order_relaxed);
  c.device_writes = device_writes_.load(std::memory_order_relaxed);
  c.owned_writes = owned_writes_.load(std::memory_order_relaxed);
  c.device_errors = device_errors_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace pcivmm::vfio
