#include "pci/pcie_port.h"

#include <array>

#include "pci/bridge.h"

namespace pcivmm::pci {
namespace {

constexpr uint8_t kHeaderType1 = 0x01;
// Bridge Control: parity error response (0), SERR# enable (1), ISA enable (2), VGA enable (3),
// VGA 16-bit decode (4), secondary bus reset (6).
constexpr uint32_t kBridgeControlWritable = 0x001F | bridge::kControlSecondaryBusReset;

uint16_t At(uint8_t cap, uint16_t reg) { return static_cast<uint16_t>(cap + reg); }

bool IsDownstreamPort(PortKind kind) {
  return kind == PortKind::kRootPort || kind == PortKind::kSwitchDownstream;
}

// PCI-to-PCI Bridge 1.2, 3.2.5, Primary/Secondary/Subordinate Bus Number: read/write, reset
// to 0. PCIe r5.0, 7.5.1.3.5, Secondary Latency Timer: "This register does not apply to PCI
// Express. It must be read-only and hardwired to 00h."
void InitBusNumbers(ConfigSpace& c) { c.SetWritable(bridge::kPrimaryBus, 3, 0xFFFFFF); }

// PCI-to-PCI Bridge 1.2, 3.2.5, I/O Base and I/O Limit: "The upper 4 bits of both the I/O Base
// and I/O Limit registers are writable and correspond to address bits AD[15::12]." "The lower
// 4 bits ... are read-only, contain the same value, and encode the I/O addressing capability
// of the bridge": 1h, 32-bit, whose upper 16 bits are in I/O Base/Limit Upper 16 Bits (RW).
void InitIoWindow(ConfigSpace& c) {
  for (uint16_t reg : {bridge::kIoBase, bridge::kIoLimit}) {
    c.Set(reg, 1, bridge_bits::kIo32);
    c.SetWritable(reg, 1, bridge_bits::kIoAddress);
  }
  c.SetWritable(bridge::kIoBaseUpper, 4, 0xFFFFFFFF);
}

// Memory Base and Memory Limit: "The upper 12 bits of both ... are read/write and correspond
// to the upper 12 address bits, AD[31::20], of 32-bit addresses. ... The bottom 4 bits ... are
// read-only and return zeros when read."
void InitMemoryWindow(ConfigSpace& c) {
  c.SetWritable(bridge::kMemoryBase, 4,
                bridge_bits::kMemoryAddress << 16 | bridge_bits::kMemoryAddress);
}

// Prefetchable Memory Base and Limit: "The bottom 4 bits ... are read-only, contain the same
// value, and encode whether or not the bridge supports 64-bit addresses": 1h, with the rest of
// the address in Prefetchable Base/Limit Upper 32 Bits (RW).
void InitPrefetchWindow(ConfigSpace& c) {
  c.Set(bridge::kPrefetchBase, 4, bridge_bits::kPrefetch64 << 16 | bridge_bits::kPrefetch64);
  c.SetWritable(bridge::kPrefetchBase, 4,
                bridge_bits::kMemoryAddress << 16 | bridge_bits::kMemoryAddress);
  c.SetWritable(bridge::kPrefetchBaseUpper, 4, 0xFFFFFFFF);
  c.SetWritable(bridge::kPrefetchLimitUpper, 4, 0xFFFFFFFF);
}

// PCIe r5.0, 7.5.3.2-5: the capability's version and Device/Port Type, Slot Implemented for a
// downstream port with a slot; Device Capabilities (Max_Payload_Size Supported: 256 bytes),
// Device Control RW, Device Status error bits RW1C.
void InitDevice(ConfigSpace& c, uint8_t at, const DeviceSpec& spec) {
  uint32_t caps = pcie::kCapabilityVersion | uint32_t{PciePortType(spec.port)}
                                                 << pcie::kPortTypeShift;
  if (PcieSlotImplemented(spec)) caps |= pcie::kSlotImplemented;
  c.Set(At(at, pcie::kCapabilities), 2, caps);
  c.Set(At(at, pcie::kDeviceCapabilities), 4, 0x1);
  c.SetWritable(At(at, pcie::kDeviceControl), 2, 0x7FFF);
  c.SetWriteOneToClear(At(at, pcie::kDeviceStatus), 2, 0x000F);
}

// PCIe r5.0, 7.5.3.6, Link Capabilities: Max Link Speed (3:0), Maximum Link Width (9:4); Data
// Link Layer Link Active Reporting Capable (20): "For a hot-plug capable Downstream Port ...
// this bit must be hardwired to 1b" (set on every downstream port: pciehp reads it); Port
// Number (31:24): "the PCI Express Port number for the given PCI Express Link".
uint32_t LinkCapabilities(const DeviceSpec& spec) {
  uint32_t caps = spec.link_speed | uint32_t{spec.link_width} << pcie::kLinkWidthShift;
  if (IsDownstreamPort(spec.port)) caps |= pcie::kLinkActiveReportingCapable;
  if (spec.port != PortKind::kNone)
    caps |= static_cast<uint32_t>(spec.slot) << pcie::kPortNumberShift;
  return caps;
}

// PCIe r5.0, 7.5.3.8, Link Status: Current Link Speed and Negotiated Link Width as trained
// (the link runs at its maximum); Data Link Layer Link Active (13): "This bit must be
// implemented if the Data Link Layer Link Active Reporting Capable bit is 1b. Otherwise, this
// bit must be hardwired to 0b." Up for now (hot-plug will clear it for an empty slot). Slot
// Clock Configuration (12): the port uses the platform's reference clock.
uint32_t LinkStatus(const DeviceSpec& spec) {
  uint32_t status = spec.link_speed | uint32_t{spec.link_width} << pcie::kLinkWidthShift;
  if (spec.port != PortKind::kNone) status |= pcie::kLinkStatusSlotClock;
  if (IsDownstreamPort(spec.port)) status |= pcie::kLinkStatusLinkActive;
  return status;
}

// PCIe r5.0, 7.5.3.7, Link Control: ASPM Control (1:0), RCB (3), Link Disable (4), Common
// Clock (6), Extended Synch (7), Clock PM (8), HW Autonomous Width Disable (9), bandwidth
// interrupt enables (11:10) are RW. Retrain Link (5): "Reads of this bit always return 0b"
// (read-only zero here: there is no link to retrain). Link Disable and Retrain Link are
// "reserved for Endpoints ... and Upstream Ports of Switches".
void InitLink(ConfigSpace& c, uint8_t at, const DeviceSpec& spec) {
  constexpr uint32_t kLinkDisable = 1u << 4;
  c.Set(At(at, pcie::kLinkCapabilities), 4, LinkCapabilities(spec));
  c.SetWritable(At(at, pcie::kLinkControl), 2,
                IsDownstreamPort(spec.port) ? 0x0FDF : 0x0FDF & ~kLinkDisable);
  c.Set(At(at, pcie::kLinkStatus), 2, LinkStatus(spec));
}

// PCIe r5.0, 7.5.3.18, Link Capabilities 2, Supported Link Speeds Vector (7:1): bit n - 1 of
// the vector for speed code n, every speed up to the maximum. 7.5.3.19, Link Control 2, Target
// Link Speed (3:0, RWS): defaults to the Max Link Speed.
void InitLink2(ConfigSpace& c, uint8_t at, const DeviceSpec& spec) {
  c.Set(At(at, pcie::kLinkCapabilities2), 4, ((1u << spec.link_speed) - 1) << 1);
  c.Set(At(at, pcie::kLinkControl2), 2, spec.link_speed);
  c.SetWritable(At(at, pcie::kLinkControl2), 2, 0x000F);
}

// PCIe r5.0, 7.5.3.9, Slot Capabilities: Physical Slot Number (31:19), Slot Power Limit 75 W
// (value 75 in 14:7, scale 0 = 1.0x in 16:15); a hot-plug slot has an attention button, a
// power controller, attention and power indicators, and is Hot-Plug Capable. No Command
// Completed Support (18) is 0: software waits for Command Completed after each Slot Control
// write (the hot-plug controller, not modelled yet, must set it and interrupt).
uint32_t SlotCapabilities(const DeviceSpec& spec) {
  constexpr uint32_t kPowerLimit75W = 75u << pcie::kSlotPowerLimitValueShift;
  uint32_t caps = static_cast<uint32_t>(spec.physical_slot) << pcie::kPhysicalSlotShift;
  caps |= kPowerLimit75W;
  if (spec.hotplug) {
    caps |= pcie::kSlotAttentionButton | pcie::kSlotPowerController |
            pcie::kSlotAttentionIndicator | pcie::kSlotPowerIndicator | pcie::kSlotHotPlugCapable;
  }
  return caps;
}

// PCIe r5.0, 7.5.3.10, Slot Control: bits 10:0 and Data Link Layer State Changed Enable (12)
// are RW; Electromechanical Interlock Control (11): "A read of this register always returns a
// 0b" (no interlock here). A hot-plug slot starts with the attention indicator off (11b) and
// the power indicator on (01b), power on (Power Controller Control 0). 7.5.3.11, Slot Status:
// the event bits (4:0, 8) are RW1C; Presence Detect State (6) reads 1 for now (an adapter is
// present); MRL Sensor State (5) is 0.
void InitSlot(ConfigSpace& c, uint8_t at, const DeviceSpec& spec) {
  constexpr uint32_t kIndicatorsOffPowerOn = 0x3u << 6 | 0x1u << 8;
  constexpr uint32_t kSlotStatusEvents = 0x001F | pcie::kSlotStatusLinkStateChanged;
  c.Set(At(at, pcie::kSlotCapabilities), 4, SlotCapabilities(spec));
  c.Set(At(at, pcie::kSlotControl), 2, spec.hotplug ? kIndicatorsOffPowerOn : 0);
  c.SetWritable(At(at, pcie::kSlotControl), 2, 0x17FF);
  c.Set(At(at, pcie::kSlotStatus), 2, pcie::kSlotStatusPresenceDetect);
  c.SetWriteOneToClear(At(at, pcie::kSlotStatus), 2, kSlotStatusEvents);
}

// PCIe r5.0, 7.5.3.12-14: Root Control's error and PME interrupt enables (4:0) are RW, Root
// Capabilities is 0 (no CRS Software Visibility), Root Status' PME Status (16) is RW1C.
void InitRoot(ConfigSpace& c, uint8_t at) {
  c.SetWritable(At(at, pcie::kRootControl), 2, 0x001F);
  c.SetWriteOneToClear(At(at, pcie::kRootStatus), 4, 1u << 16);
}

}  // namespace

// PCIe r5.0, 7.5.3.2, Device/Port Type: "0000b PCI Express Endpoint ... 0100b Root Port of PCI
// Express Root Complex ... 0101b Upstream Port of PCI Express Switch ... 0110b Downstream Port
// of PCI Express Switch".
uint8_t PciePortType(PortKind kind) {
  switch (kind) {
    case PortKind::kNone:
      return pcie::kTypeEndpoint;
    case PortKind::kRootPort:
      return pcie::kTypeRootPort;
    case PortKind::kSwitchUpstream:
      return pcie::kTypeSwitchUpstream;
    case PortKind::kSwitchDownstream:
      return pcie::kTypeSwitchDownstream;
  }
  return pcie::kTypeEndpoint;
}

// PCIe r5.0, 7.5.3.2, Slot Implemented: "When Set, this bit indicates that the Link associated
// with this Port is connected to a slot ... This bit is valid for Downstream Ports."
bool PcieSlotImplemented(const DeviceSpec& spec) {
  return IsDownstreamPort(spec.port) && spec.physical_slot != 0;
}

// PCIe r5.0, 7.5.1.3 and PCI-to-PCI Bridge 1.2, 3.2: header type 01h. A port has no BARs
// (0x10, 0x14) and no expansion ROM (0x38): they read 0 and ignore writes. Secondary Status
// has the error bits of the Status register, RW1C. Interrupt Pin: INTA#.
void InitType1Header(ConfigSpace& c) {
  c.Set(cfg::kHeaderType, 1, kHeaderType1);
  InitBusNumbers(c);
  InitIoWindow(c);
  c.SetWriteOneToClear(bridge::kSecondaryStatus, 2, cfg::kStatusErrorBits);
  InitMemoryWindow(c);
  InitPrefetchWindow(c);
  c.Set(cfg::kInterruptPin, 1, 1);
  c.SetWritable(bridge::kBridgeControl, 2, kBridgeControlWritable);
}

// PCIe r5.0, 7.5.3: the capability's registers through Slot Status 2 (0x3C bytes for version
// 2). The Device 2, Link Status 2 and Slot 2 registers are zero but for the link speeds.
uint8_t AddPcieCapability(ConfigSpace& c, const DeviceSpec& spec) {
  const std::array<uint8_t, pcie::kCapabilitySize - 2> body{};
  const uint8_t at = c.AddCapability(pcie::kCapabilityId, body);
  if (at == 0) return 0;
  InitDevice(c, at, spec);
  InitLink(c, at, spec);
  InitLink2(c, at, spec);
  if (PcieSlotImplemented(spec)) InitSlot(c, at, spec);
  if (spec.port == PortKind::kRootPort) InitRoot(c, at);
  return at;
}

}  // namespace pcivmm::pci
