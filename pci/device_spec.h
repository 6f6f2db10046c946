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

// What a function is on the PCIe fabric (PCIe r5.0, 7.5.3.2, Device/Port Type). A port is a
// PCI-to-PCI bridge: a type-1 header (PCI-to-PCI Bridge Architecture 1.2, 3.2) with a
// secondary bus below it.
enum class PortKind : uint8_t {
  kNone,              // an endpoint (type-0 header)
  kRootPort,          // Root Port of a Root Complex: on bus 0, a link (and a slot) below
  kSwitchUpstream,    // a switch's Upstream Port: behind a root or downstream port
  kSwitchDownstream,  // a switch's Downstream Port: on its upstream port's internal bus
};

struct DeviceSpec {
  std::string name;
  // Device number: on bus 0, 1..31 (0 is the host bridge); behind a root or switch downstream
  // port 0 (PCIe r5.0, 7.3.1: a Downstream Port forwards only device 0); on a switch's internal
  // bus (behind its upstream port), the downstream port's number, 0..31.
  int slot = 1;
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
  // Where the function sits: empty, bus 0; else behind the port of that name (its secondary
  // bus), at device `slot`.
  std::string parent;
  PortKind port = PortKind::kNone;
  // Root and switch downstream ports: the slot below them (PCIe Slot Capabilities). 0: no slot
  // implemented; else its physical slot number, 1..8191.
  int physical_slot = 0;
  bool hotplug = false;  // the slot is hot-plug capable (native PCIe hot-plug, pciehp)
  // The link (PCIe Link Capabilities and Status): speed code (1 = 2.5 GT/s .. 5 = 32 GT/s)
  // and width in lanes (1, 2, 4, 8, 16 or 32).
  uint8_t link_speed = 4;  // 16 GT/s
  uint8_t link_width = 16;
};

// InvalidArgument naming the bad field ("devices[gpu0].bars[1].size: ...").
absl::Status ValidateDeviceSpec(const DeviceSpec& d);

// A GPU-like passthrough device: 16 MiB BAR0, 128 GiB 64-bit prefetchable BAR1,
// 32 MiB 64-bit BAR3, a 512 KiB ROM, PCIe + PM + MSI + MSI-X.
DeviceSpec GpuLikeDevice(std::string name, int slot, uint64_t bar1_size = 128ull << 30);

// The host bridge at 00:00.0 (no BARs).
DeviceSpec HostBridgeDevice();

// PCIe ports (no BARs; PCIe, PM and MSI capabilities). A root port at 00:`slot`.0 with the
// given physical slot number; a switch's upstream port behind `parent`; a switch downstream
// port at device `device` of the internal bus behind the upstream port `parent`.
DeviceSpec RootPortDevice(std::string name, int slot, int physical_slot, bool hotplug);
DeviceSpec SwitchUpstreamDevice(std::string name, std::string parent);
DeviceSpec SwitchDownstreamDevice(std::string name, std::string parent, int device,
                                  int physical_slot, bool hotplug);
const char* PortKindName(PortKind kind);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_DEVICE_SPEC_H_
