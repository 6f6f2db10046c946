// Little-endian loads and stores of 1..4 config bytes, shared by the access paths and VFIO.
#ifndef PCIVMM_PCI_LE_BYTES_H_
#define PCIVMM_PCI_LE_BYTES_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace pcivmm::pci {

// Up to 4 bytes of `data` as a little-endian value.
inline uint32_t LoadLe(absl::Span<const uint8_t> data) {
  uint32_t v = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) v |= uint32_t{data[i]} << (8 * i);
  return v;
}

// `value` little-endian into `data`; bytes past the fourth read all-ones.
inline void StoreLe(uint32_t value, absl::Span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = i < 4 ? static_cast<uint8_t>(value >> (8 * i)) : uint8_t{0xFF};
  }
}

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_LE_BYTES_H_
