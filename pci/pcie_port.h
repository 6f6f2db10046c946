// PCIe ports and links, built from a DeviceSpec: the type-1 header a port presents as a
// PCI-to-PCI bridge (PCIe r5.0, 7.5.1.3; PCI-to-PCI Bridge Architecture 1.2, 3.2) and the PCI
// Express capability of every PCIe function, endpoint or port (PCIe r5.0, 7.5.3).
#ifndef PCIVMM_PCI_PCIE_PORT_H_
#define PCIVMM_PCI_PCIE_PORT_H_

#include <cstdint>

#include "pci/config_space.h"
#include "pci/device_spec.h"

namespace pcivmm::pci {

// The PCI Express capability (PCIe r5.0, 7.5.3, figure 7-21): register offsets from the
// capability's start, and the bits the ports use.
namespace pcie {
inline constexpr uint8_t kCapabilityId = 0x10;
inline constexpr uint8_t kCapabilitySize = 0x3C;  // version 2: through Slot Status 2

inline constexpr uint16_t kCapabilities = 0x02;
inline constexpr uint16_t kDeviceCapabilities = 0x04;
inline constexpr uint16_t kDeviceControl = 0x08;
inline constexpr uint16_t kDeviceStatus = 0x0A;
inline constexpr uint16_t kLinkCapabilities = 0x0C;
inline constexpr uint16_t kLinkControl = 0x10;
inline constexpr uint16_t kLinkStatus = 0x12;
inline constexpr uint16_t kSlotCapabilities = 0x14;
inline constexpr uint16_t kSlotControl = 0x18;
inline constexpr uint16_t kSlotStatus = 0x1A;
inline constexpr uint16_t kRootControl = 0x1C;
inline constexpr uint16_t kRootCapabilities = 0x1E;
inline constexpr uint16_t kRootStatus = 0x20;
inline constexpr uint16_t kDeviceCapabilities2 = 0x24;
inline constexpr uint16_t kLinkCapabilities2 = 0x2C;
inline constexpr uint16_t kLinkControl2 = 0x30;
inline constexpr uint16_t kLinkStatus2 = 0x32;

// PCI Express Capabilities register (7.5.3.2).
inline constexpr uint16_t kCapabilityVersion = 0x2;
inline constexpr unsigned kPortTypeShift = 4;
inline constexpr uint16_t kSlotImplemented = 1u << 8;
// Device/Port Type values.
inline constexpr uint8_t kTypeEndpoint = 0x0;
inline constexpr uint8_t kTypeRootPort = 0x4;
inline constexpr uint8_t kTypeSwitchUpstream = 0x5;
inline constexpr uint8_t kTypeSwitchDownstream = 0x6;

// Link Capabilities (7.5.3.6) and Link Status (7.5.3.8).
inline constexpr unsigned kLinkWidthShift = 4;
inline constexpr uint32_t kLinkActiveReportingCapable = 1u << 20;
inline constexpr unsigned kPortNumberShift = 24;
inline constexpr uint16_t kLinkStatusSlotClock = 1u << 12;
inline constexpr uint16_t kLinkStatusLinkActive = 1u << 13;

// Slot Capabilities (7.5.3.9).
inline constexpr uint32_t kSlotAttentionButton = 1u << 0;
inline constexpr uint32_t kSlotPowerController = 1u << 1;
inline constexpr uint32_t kSlotAttentionIndicator = 1u << 3;
inline constexpr uint32_t kSlotPowerIndicator = 1u << 4;
inline constexpr uint32_t kSlotHotPlugCapable = 1u << 6;
inline constexpr unsigned kSlotPowerLimitValueShift = 7;
inline constexpr unsigned kPhysicalSlotShift = 19;

// Slot Status (7.5.3.11).
inline constexpr uint16_t kSlotStatusAttentionButtonPressed = 1u << 0;
inline constexpr uint16_t kSlotStatusPresenceDetectChanged = 1u << 3;
inline constexpr uint16_t kSlotStatusCommandCompleted = 1u << 4;
inline constexpr uint16_t kSlotStatusPresenceDetect = 1u << 6;
inline constexpr uint16_t kSlotStatusLinkStateChanged = 1u << 8;
}  // namespace pcie

// The Device/Port Type of a function (7.5.3.2, bits 7:4).
uint8_t PciePortType(PortKind kind);

// True for a port with a slot below it: a root or switch downstream port with a physical
// slot number (PCIe r5.0, 7.5.3.2, Slot Implemented).
bool PcieSlotImplemented(const DeviceSpec& spec);

// The type-1 registers of a port's header, 0x0E and 0x10..0x3F but the capabilities
// pointer and the interrupt line (the header type's common part is the caller's).
void InitType1Header(ConfigSpace& c);

// Appends the PCI Express capability (version 2) for `spec` and returns its offset; 0 when
// conventional space is full.
uint8_t AddPcieCapability(ConfigSpace& c, const DeviceSpec& spec);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_PCIE_PORT_H_
