// What an emulated passthrough device looks like: IDs, BARs, capabilities.
#ifndef PCIVMM_PCI_DEVICE_SPEC_H_
#define PCIVMM_PCI_DEVICE_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pcivmm::pci {

enum class BarKind : uint8_t { kIo, kMem32, kMem64 };

struct BarSpec {
  int index = 0;  // 0..5; a 64-bit BAR also takes index + 1
  BarKind kind = BarKind::kMem32;
  uint64_t size = 0;  // a power of two: I/O 4..256 bytes, memory 4 KiB and up
  bool prefetchable = false;
};

struct DeviceSpec {
  std::string name;
  int slot = 1;  // device number on bus 0: 1..31 (0 is the host bridge)
  int function = 0;
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_id = 0;
  uint32_t class_code = 0;  // base class, subclass, prog-if (24 bits)
  uint8_t revision = 0;
  std::vector<BarSpec> bars;
  uint64_t rom_size = 0;  // 0: no expansion ROM; else a power of two, 2 KiB..16 MiB
  bool pcie = true;       // PCI Express capability (and an extended capability at 0x100)
  bool power_management = true;
  bool msi = true;
  bool msix = false;
  // Serve this function's config reads from the ECAM shadow without exits. A function whose
  // registers change without a guest write (a real device) opts out: its page traps.
  bool ecam_fast_path = true;
  // A real device (VFIO) behind the function: its memory BARs may be as small as the spec
  // allows (16 bytes; they trap), and the device backs them, not the vBAR mapper's memfds.
  bool passthrough = false;
};

// InvalidArgument naming the bad field ("devices[gpu0].bars[1].size: ...").
absl::Status ValidateDeviceSpec(const DeviceSpec& d);

// A GPU-like passthrough device: 16 MiB BAR0, 128 GiB 64-bit prefetchable BAR1,
// 32 MiB 64-bit BAR3, a 512 KiB ROM, PCIe + PM + MSI + MSI-X.
DeviceSpec GpuLikeDevice(std::string name, int slot, uint64_t bar1_size = 128ull << 30);

// The host bridge at 00:00.0 (no BARs).
DeviceSpec HostBridgeDevice();

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_DEVICE_SPEC_H_
