#include "pci/device_spec.h"

#include <bitset>

#include "absl/strings/str_format.h"

namespace pcivmm::pci {
namespace {

bool PowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

absl::Status BarError(const DeviceSpec& d, size_t i, const char* field, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("devices[%s].bars[%d].%s: %s", d.name, i, field, why));
}

absl::Status ValidateBar(const DeviceSpec& d, size_t i, std::bitset<6>& used) {
  const BarSpec& b = d.bars[i];
  const int slots = b.kind == BarKind::kMem64 ? 2 : 1;
  if (b.index < 0 || b.index + slots > 6) {
    return BarError(d, i, "index", absl::StrFormat("%d does not fit in BAR0..BAR5", b.index));
  }
  for (int s = b.index; s < b.index + slots; ++s) {
    if (used[static_cast<size_t>(s)]) {
      return BarError(d, i, "index", absl::StrFormat("BAR%d is already used", s));
    }
    used.set(static_cast<size_t>(s));
  }
  if (!PowerOfTwo(b.size)) return BarError(d, i, "size", "must be a power of two");
  if (b.kind == BarKind::kIo && (b.size < 4 || b.size > 256)) {
    return BarError(d, i, "size", "an I/O BAR is 4..256 bytes");
  }
  // PCI 3.0, 6.2.5.1: a memory BAR claims at least 16 bytes; an emulated one is backed by
  // whole pages.
  if (b.kind != BarKind::kIo && b.size < (d.passthrough ? 16u : 4096u)) {
    return BarError(d, i, "size",
                    d.passthrough ? "a memory BAR is at least 16 bytes"
                                  : "an emulated memory BAR is at least 4 KiB");
  }
  if (b.kind == BarKind::kMem32 && b.size > (1ull << 31)) {
    return BarError(d, i, "size", "a 32-bit BAR is at most 2 GiB");
  }
  if (b.kind == BarKind::kMem64 && b.size > (1ull << 47)) {
    return BarError(d, i, "size", "a 64-bit BAR is at most 128 TiB here");
  }
  if (b.kind == BarKind::kIo && b.prefetchable) {
    return BarError(d, i, "prefetchable", "an I/O BAR cannot be prefetchable");
  }
  return absl::OkStatus();
}

absl::Status SpecError(const DeviceSpec& d, const char* field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrFormat("devices[%s].%s: %s", d.name, field, why));
}

// The placement and link rules of ports and of what sits behind them (the PortKind comments).
absl::Status ValidatePort(const DeviceSpec& d) {
  const bool is_port = d.port != PortKind::kNone;
  if (is_port && (!d.bars.empty() || d.rom_size != 0)) {
    return SpecError(d, "bars", "a port here has no BARs and no ROM");
  }
  if (is_port && !d.pcie) return SpecError(d, "pcie", "a PCIe port has the PCIe capability");
  if (d.port == PortKind::kRootPort && !d.parent.empty()) {
    return SpecError(d, "parent", "a root port sits on bus 0");
  }
  if (d.port == PortKind::kSwitchDownstream && d.parent.empty()) {
    return SpecError(d, "parent", "a switch downstream port sits behind its upstream port");
  }
  if (d.port == PortKind::kSwitchUpstream && d.parent.empty()) {
    return SpecError(d, "parent", "a switch upstream port sits behind a root or downstream port");
  }
  const bool has_slot = d.port == PortKind::kRootPort || d.port == PortKind::kSwitchDownstream;
  if (d.physical_slot < 0 || d.physical_slot > 8191 || (!has_slot && d.physical_slot != 0)) {
    return SpecError(
        d, "physical_slot",
        absl::StrFormat("%d: only root and downstream ports have one, 1..8191", d.physical_slot));
  }
  if (d.hotplug && d.physical_slot == 0) {
    return SpecError(d, "hotplug", "needs a slot (physical_slot 1..8191)");
  }
  if (d.link_speed < 1 || d.link_speed > 5) {
    return SpecError(d, "link_speed", absl::StrFormat("%d is outside 1..5", d.link_speed));
  }
  if (!PowerOfTwo(d.link_width) || d.link_width > 32) {
    return SpecError(d, "link_width",
                     absl::StrFormat("%d is not 1, 2, 4, 8, 16 or 32", d.link_width));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateDeviceSpec(const DeviceSpec& d) {
  if (d.slot < 0 || d.slot > 31) {
    return absl::InvalidArgumentError(
        absl::StrFormat("devices[%s].slot: %d is outside 0..31", d.name, d.slot));
  }
  if (d.function < 0 || d.function > 7) {
    return absl::InvalidArgumentError(
        absl::StrFormat("devices[%s].function: %d is outside 0..7", d.name, d.function));
  }
  if (d.vendor_id == 0xFFFF || d.vendor_id == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("devices[%s].vendor_id: %#x is reserved (absent functions read 0xffff)",
                        d.name, d.vendor_id));
  }
  if (d.class_code > 0xFFFFFF) {
    return absl::InvalidArgumentError(
        absl::StrFormat("devices[%s].class_code: %#x is wider than 24 bits", d.name, d.class_code));
  }
  std::bitset<6> used;
  for (size_t i = 0; i < d.bars.size(); ++i) {
    if (absl::Status st = ValidateBar(d, i, used); !st.ok()) return st;
  }
  if (absl::Status st = ValidatePort(d); !st.ok()) return st;
  if (d.rom_size != 0 &&
      (!PowerOfTwo(d.rom_size) || d.rom_size < 2048 || d.rom_size > (16u << 20))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "devices[%s].rom_size: %#x must be a power of two in 2 KiB..16 MiB", d.name, d.rom_size));
  }
  return absl::OkStatus();
}

DeviceSpec GpuLikeDevice(std::string name, int slot, uint64_t bar1_size) {
  DeviceSpec d;
  d.name = std::move(name);
  d.slot = slot;
  d.vendor_id = 0x10DE;
  d.device_id = 0x20B5;
  d.subsystem_vendor_id = 0x10DE;
  d.subsystem_id = 0x1533;
  d.class_code = 0x030200;  // display controller, 3D
  d.revision = 0xA1;
  d.bars = {{0, BarKind::kMem32, 16ull << 20, false},
            {1, BarKind::kMem64, bar1_size, true},
            {3, BarKind::kMem64, 32ull << 20, true}};
  d.rom_size = 512 << 10;
  d.msix = true;
  return d;
}

DeviceSpec HostBridgeDevice() {
  DeviceSpec d;
  d.name = "host-bridge";
  d.slot = 0;
  d.vendor_id = 0x8086;  // the 440FX-style bridge IDs guests know
  d.device_id = 0x29C0;
  d.class_code = 0x060000;  // bridge, host bridge
  d.pcie = false;
  d.power_management = false;
  d.msi = false;
  return d;
}

namespace {

DeviceSpec PortDevice(std::string name, PortKind kind, uint16_t device_id) {
  DeviceSpec d;
  d.name = std::move(name);
  d.port = kind;
  d.device_id = device_id;
  d.class_code = 0x060400;  // bridge, PCI-to-PCI, normal decode
  d.msi = true;
  return d;
}

}  // namespace

// IDs as QEMU's ports have them, which Linux and pci.ids know: Red Hat's PCIe root port, and
// TI's XIO3130 switch (upstream and downstream).
DeviceSpec RootPortDevice(std::string name, int slot, int physical_slot, bool hotplug) {
  DeviceSpec d = PortDevice(std::move(name), PortKind::kRootPort, 0x000C);
  d.vendor_id = 0x1B36;
  d.slot = slot;
  d.physical_slot = physical_slot;
  d.hotplug = hotplug;
  return d;
}

DeviceSpec SwitchUpstreamDevice(std::string name, std::string parent) {
  DeviceSpec d = PortDevice(std::move(name), PortKind::kSwitchUpstream, 0x8232);
  d.vendor_id = 0x104C;
  d.parent = std::move(parent);
  d.slot = 0;
  return d;
}

DeviceSpec SwitchDownstreamDevice(std::string name, std::string parent, int device,
                                  int physical_slot, bool hotplug) {
  DeviceSpec d = PortDevice(std::move(name), PortKind::kSwitchDownstream, 0x8233);
  d.vendor_id = 0x104C;
  d.parent = std::move(parent);
  d.slot = device;
  d.physical_slot = physical_slot;
  d.hotplug = hotplug;
  return d;
}

const char* PortKindName(PortKind kind) {
  switch (kind) {
    case PortKind::kNone:
      return "endpoint";
    case PortKind::kRootPort:
      return "root port";
    case PortKind::kSwitchUpstream:
      return "switch upstream port";
    case PortKind::kSwitchDownstream:
      return "switch downstream port";
  }
  return "?";
}

}  // namespace pcivmm::pci
