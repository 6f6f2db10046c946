// One-byte accesses to an IoDevice as vCPU 0, the way a guest's inb/outb reach it: for the
// device unit tests and fuzzers.
#ifndef PCIVMM_MMIO_IO_BYTES_H_
#define PCIVMM_MMIO_IO_BYTES_H_

#include <cstdint>

#include "mmio/io_device.h"

namespace pcivmm::mmio {

inline uint8_t ReadByte(IoDevice& d, uint64_t offset) {
  uint8_t b[1] = {0};
  d.Read(offset, b, 0);
  return b[0];
}

inline void WriteByte(IoDevice& d, uint64_t offset, uint8_t value) {
  const uint8_t b[1] = {value};
  d.Write(offset, b, 0);
}

}  // namespace pcivmm::mmio

#endif  // PCIVMM_MMIO_IO_BYTES_H_
