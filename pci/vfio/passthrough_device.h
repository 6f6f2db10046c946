// A real PCI device as passthrough sees it: regions read and written through the host, parts
// of them mapped into the VMM, and interrupts signalled on eventfds. VfioDevice is the real
// one (vfio/vfio_device.h); unit tests use FakePassthroughDevice.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_DEVICE_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_DEVICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace pcivmm::vfio {

// Region indexes, as vfio-pci numbers them (VFIO_PCI_*_REGION_INDEX).
inline constexpr int kRegionBar0 = 0;
inline constexpr int kRegionRom = 6;
inline constexpr int kRegionConfig = 7;
inline constexpr int kRegionCount = 8;

// A host mapping of part of a region (the device's BAR memory itself): the VMM may hand it
// to KVM as a memory slot. Valid for the device's lifetime.
struct MappedArea {
  uint64_t offset = 0;  // within the region; 4 KiB aligned
  uint64_t size = 0;    // a multiple of 4 KiB
  uint8_t* host = nullptr;
};

struct DeviceRegion {
  uint64_t size = 0;  // 0: the device has no such region
  bool readable = false;
  bool writable = false;
  std::vector<MappedArea> mapped;  // empty: every access goes through Read/Write
};

// VFIO_PCI_*_IRQ_INDEX.
enum class IrqKind : uint32_t { kIntx = 0, kMsi = 1, kMsix = 2 };

// Thread-safety: Read and Write may be called from several vCPU threads at once; the IRQ
// setters are called with the owning function's write lock held.
class PassthroughDevice {
 public:
  virtual ~PassthroughDevice() = default;
  // The host PCI address, "0000:00:04.0".
  virtual const std::string& name() const = 0;
  virtual const DeviceRegion& region(int index) const = 0;
  // OutOfRange outside the region; the host's error otherwise.
  virtual absl::Status Read(int region, uint64_t offset, absl::Span<uint8_t> data) const = 0;
  virtual absl::Status Write(int region, uint64_t offset, absl::Span<const uint8_t> data) const = 0;
  // Vectors the device has for `kind` (0: none).
  virtual uint32_t IrqCount(IrqKind kind) const = 0;
  // From now on the device's vector i signals fds[i]; an empty span turns `kind` off.
  virtual absl::Status SetIrqEventfds(IrqKind kind, absl::Span<const int> fds) = 0;
  // INTx is level-triggered: the host masks it when it fires; a write to `fd` unmasks it.
  virtual absl::Status SetIntxUnmaskEventfd(int fd) = 0;
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_DEVICE_H_
