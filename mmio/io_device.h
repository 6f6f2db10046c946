#ifndef PCIVMM_MMIO_IO_DEVICE_H_
#define PCIVMM_MMIO_IO_DEVICE_H_

#include <cstdint>
#include <string_view>

#include "absl/types/span.h"

namespace pcivmm::mmio {

enum class Direction : uint8_t { kRead = 0, kWrite = 1 };

// Who performs an access: a vCPU index, or the host (API, tests).
inline constexpr int kHostAccess = -1;

// A device on a port or MMIO bus. `offset` is relative to the start of the registered
// range; `data` is 1 to 8 bytes, little-endian. May be called from several vCPU threads
// at once: implementations synchronise their own state.
class IoDevice {
 public:
  virtual ~IoDevice() = default;
  virtual std::string_view Name() const = 0;
  virtual void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) = 0;
  virtual void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) = 0;
};

}  // namespace pcivmm::mmio

#endif  // PCIVMM_MMIO_IO_DEVICE_H_
