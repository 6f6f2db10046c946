#include "pci/config_space.h"

#include <atomic>
#include <cstring>

namespace pcivmm::pci {

ConfigSpace::ConfigSpace(absl::Span<uint8_t> storage) : bytes_(storage) {
  std::memset(bytes_.data(), 0, bytes_.size());
}

uint32_t ConfigSpace::LoadDword(uint16_t at) const {
  // Storage is 4-byte aligned (constructor contract) and `at` is a multiple of 4.
  auto* p = reinterpret_cast<uint32_t*>(const_cast<uint8_t*>(bytes_.data()) + at);
  return std::atomic_ref<uint32_t>(*p).load(std::memory_order_relaxed);
}

void ConfigSpace::StoreDword(uint16_t at, uint32_t dword) {
  auto* p = reinterpret_cast<uint32_t*>(bytes_.data() + at);
  std::atomic_ref<uint32_t>(*p).store(dword, std::memory_order_release);
}

uint32_t ConfigSpace::Read(uint16_t offset, uint8_t width) const {
  const uint32_t dword = LoadDword(static_cast<uint16_t>(offset & ~3u));
  const uint32_t shifted = dword >> (8 * (offset & 3));
  return width == 4 ? shifted : shifted & ((1u << (8 * width)) - 1);
}

// PCI 3.0, 6.1: "read-only bits ... writes have no effect"; RW1C: "writing a 1 clears the
// bit, writing a 0 has no effect".
void ConfigSpace::Write(uint16_t offset, uint8_t width, uint32_t value) {
  const auto at = static_cast<uint16_t>(offset & ~3u);
  const unsigned shift = 8 * (offset & 3);
  uint32_t dword = LoadDword(at);
  for (unsigned i = 0; i < width; ++i) {
    const size_t byte = offset + i;
    const auto v = static_cast<uint8_t>(value >> (8 * i));
    const unsigned pos = shift + 8 * i;
    auto b = static_cast<uint8_t>(dword >> pos);
    b = static_cast<uint8_t>((b & ~writable_[byte]) | (v & writable_[byte]));
    b = static_cast<uint8_t>(b & ~(v & w1c_[byte]));
    dword = (dword & ~(0xFFu << pos)) | (uint32_t{b} << pos);
  }
  StoreDword(at, dword);
}

void ConfigSpace::Set(uint16_t offset, uint8_t width, uint32_t value) {
  for (unsigned i = 0; i < width; ++i) {
    const auto byte = static_cast<uint16_t>(offset + i);
    const auto at = static_cast<uint16_t>(byte & ~3u);
    const unsigned pos = 8 * (byte & 3u);
    const uint32_t v = (value >> (8 * i)) & 0xFF;
    StoreDword(at, (LoadDword(at) & ~(0xFFu << pos)) | v << pos);
  }
}

void ConfigSpace::SetWritable(uint16_t offset, uint8_t width, uint32_t mask) {
  for (unsigned i = 0; i < width; ++i)
    writable_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
}

void ConfigSpace::SetWriteOneToClear(uint16_t offset, uint8_t width, uint32_t mask) {
  for (unsigned i = 0; i < width; ++i) w1c_[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
}

// PCI 3.0, 6.7: the list starts at the pointer in 0x34; each entry is (ID, next pointer),
// dword aligned, in the device-specific area 0x40..0xFF; a next pointer of 0 ends it.
uint8_t ConfigSpace::AddCapability(uint8_t id, absl::Span<const uint8_t> body) {
  const size_t size = (2 + body.size() + 3) & ~size_t{3};
  if (next_cap_ + size > kConventionalConfigSize) return 0;
  const uint8_t at = next_cap_;
  bytes_[at] = id;
  bytes_[at + 1] = 0;
  std::memcpy(bytes_.data() + at + 2, body.data(), body.size());
  bytes_[last_cap_ == 0 ? cfg::kCapabilitiesPointer : last_cap_ + 1u] = at;
  Set(cfg::kStatus, 2, Read(cfg::kStatus, 2) | cfg::kStatusCapabilities);
  last_cap_ = at;
  next_cap_ = static_cast<uint8_t>(at + size);
  return at;
}

// PCIe Base 4.0, 7.6.3: extended capability header = ID [15:0], version [19:16], next
// offset [31:20]; the list starts at 0x100 and a next offset of 0 ends it.
uint16_t ConfigSpace::AddExtendedCapability(uint16_t id, uint8_t version,
                                            absl::Span<const uint8_t> body) {
  const size_t size = (4 + body.size() + 3) & ~size_t{3};
  if (next_ext_cap_ + size > kConfigSpaceSize) return 0;
  const uint16_t at = next_ext_cap_;
  Set(at, 4, uint32_t{id} | (uint32_t{version} & 0xF) << 16);
  std::memcpy(bytes_.data() + at + 4, body.data(), body.size());
  if (last_ext_cap_ != 0) {
    Set(last_ext_cap_, 4, Read(last_ext_cap_, 4) | uint32_t{at} << 20);
  }
  last_ext_cap_ = at;
  next_ext_cap_ = static_cast<uint16_t>(at + size);
  return at;
}

}  // namespace pcivmm::pci
