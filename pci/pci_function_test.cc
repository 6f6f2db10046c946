#include "pci/pci_function.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "pci/pcie_port.h"

namespace pcivmm::pci {
namespace {

class PciFunctionTest : public ::testing::Test {
 protected:
  PciFunction Make(DeviceSpec spec) { return {std::move(spec), absl::MakeSpan(storage_)}; }
  alignas(4) uint8_t storage_[kConfigSpaceSize];
};

// The sizing procedure of PCI 3.0, 6.2.5.1: save, write all 1's, read back, restore; the
// size is the two's complement of the read-back value with the type bits masked.
uint64_t SizeBar(PciFunction& f, const BarSpec& b) {
  const uint16_t off = BarOffset(b.index);
  const uint32_t orig = f.Read(off, 4);
  f.Write(off, 4, 0xFFFFFFFF);
  uint64_t mask = f.Read(off, 4);
  f.Write(off, 4, orig);
  const bool is64 = b.kind == BarKind::kMem64;
  if (is64) {
    const auto hi = static_cast<uint16_t>(off + 4);
    const uint32_t orig_hi = f.Read(hi, 4);
    f.Write(hi, 4, 0xFFFFFFFF);
    mask |= uint64_t{f.Read(hi, 4)} << 32;
    f.Write(hi, 4, orig_hi);
  } else {
    mask |= 0xFFFFFFFF00000000ull;
  }
  mask &= b.kind == BarKind::kIo ? ~0x3ull : ~0xFull;
  return ~mask + 1;
}

struct SizingCase {
  BarKind kind;
  uint64_t size;
  bool prefetchable;
  uint32_t type_bits;
};

TEST_F(PciFunctionTest, SizingReturnsTheSizeAndTypeBitsForEveryBarKind) {
  const std::vector<SizingCase> cases = {
      {BarKind::kIo, 4, false, 0x1},
      {BarKind::kIo, 256, false, 0x1},
      {BarKind::kMem32, 4096, false, 0x0},
      {BarKind::kMem32, 1ull << 31, true, 0x8},
      {BarKind::kMem64, 4096, false, 0x4},
      {BarKind::kMem64, 16ull << 20, true, 0xC},
      {BarKind::kMem64, 4ull << 30, true, 0xC},
      {BarKind::kMem64, 128ull << 30, true, 0xC},
      {BarKind::kMem64, 512ull << 30, true, 0xC},
      {BarKind::kMem64, 1ull << 47, true, 0xC},
  };
  for (const SizingCase& c : cases) {
    DeviceSpec spec;
    spec.vendor_id = 0x1234;
    spec.bars = {{0, c.kind, c.size, c.prefetchable}};
    PciFunction f = Make(spec);
    EXPECT_EQ(SizeBar(f, spec.bars[0]), c.size) << c.size;
    f.Write(cfg::kBar0, 4, 0xFFFFFFFF);
    EXPECT_EQ(f.Read(cfg::kBar0, 4) & (c.kind == BarKind::kIo ? 0x3u : 0xFu), c.type_bits);
  }
}

TEST_F(PciFunctionTest, ProgrammedAddressSurvivesSizingAndDecodes) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  PciFunction f = Make(spec);
  f.ProgramBar(spec.bars[1], 0x20'0000'0000ull);
  EXPECT_EQ(f.BarAddress(spec.bars[1]), 0x20'0000'0000ull);
  EXPECT_EQ(SizeBar(f, spec.bars[1]), 128ull << 30);
  EXPECT_EQ(f.BarAddress(spec.bars[1]), 0x20'0000'0000ull);
  EXPECT_EQ(f.Read(BarOffset(1), 4) & 0xF, 0xCu);
}

TEST_F(PciFunctionTest, AddressBitsBelowTheSizeReadZero) {
  DeviceSpec spec;
  spec.vendor_id = 0x1234;
  spec.bars = {{2, BarKind::kMem32, 1 << 20, false}};
  PciFunction f = Make(spec);
  f.Write(BarOffset(2), 4, 0xC0012345);
  EXPECT_EQ(f.Read(BarOffset(2), 4), 0xC0000000u);
}

TEST_F(PciFunctionTest, RomBarSizesAndKeepsItsEnableBit) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  PciFunction f = Make(spec);
  f.Write(cfg::kRomBar, 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), ~uint32_t(512 * 1024 - 1) | 1u);
  f.Write(cfg::kRomBar, 4, 0xC1000001);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), 0xC1000001u);
  EXPECT_EQ(f.RomAddress(), 0xC1000000u);
}

TEST_F(PciFunctionTest, UnusedBarsAndNoRomReadZeroAndIgnoreWrites) {
  DeviceSpec spec = GpuLikeDevice("gpu", 1);
  spec.rom_size = 0;
  PciFunction f = Make(spec);
  f.Write(BarOffset(5), 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(BarOffset(5), 4), 0u);
  f.Write(cfg::kRomBar, 4, 0xFFFFFFFF);
  EXPECT_EQ(f.Read(cfg::kRomBar, 4), 0u);
}

TEST_F(PciFunctionTest, HeaderCarriesTheSpecIdsAndReadOnlyFieldsStay) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  EXPECT_EQ(f.Read(cfg::kVendorId, 4), 0x20B510DEu);
  EXPECT_EQ(f.Read(cfg::kRevisionId, 4), 0x030200A1u);
  f.Write(cfg::kVendorId, 4, 0);
  f.Write(cfg::kRevisionId, 4, 0);
  EXPECT_EQ(f.Read(cfg::kVendorId, 4), 0x20B510DEu);
  EXPECT_EQ(f.Read(cfg::kRevisionId, 4), 0x030200A1u);
  f.Write(cfg::kCommand, 2, 0xFFFF);
  EXPECT_EQ(f.Read(cfg::kCommand, 2), 0x0507u);
}

TEST_F(PciFunctionTest, CapabilityWalkFindsPmMsiPcieMsix) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  std::vector<uint32_t> ids;
  for (uint32_t at = f.Read(cfg::kCapabilitiesPointer, 1); at != 0 && ids.size() < 48;
       at = f.Read(static_cast<uint16_t>(at + 1), 1)) {
    ids.push_back(f.Read(static_cast<uint16_t>(at), 1));
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{0x01, 0x05, 0x10, 0x11}));
  EXPECT_EQ(f.Read(cfg::kExtendedCapabilities, 4) & 0xFFFF, 0x0003u);
  EXPECT_EQ(f.Read(cfg::kExtendedCapabilities, 4) >> 20, 0u);
}

// PCIe ports: type-1 headers (PCI-to-PCI Bridge 1.2, 3.2; PCIe r5.0, 7.5.1.3) and the PCI
// Express capability's port registers (PCIe r5.0, 7.5.3).
class PortTest : public PciFunctionTest {
 protected:
  // The offset of capability `id` in the list at 0x34, 0 when absent.
  static uint16_t FindCapability(const PciFunction& f, uint8_t id) {
    int hops = 0;
    for (uint32_t at = f.Read(cfg::kCapabilitiesPointer, 1); at != 0 && hops < 48;
         at = f.Read(static_cast<uint16_t>(at + 1), 1), ++hops) {
      if (f.Read(static_cast<uint16_t>(at), 1) == id) return static_cast<uint16_t>(at);
    }
    return 0;
  }
  static uint16_t Pcie(const PciFunction& f, uint16_t reg) {
    const uint16_t at = FindCapability(f, pcie::kCapabilityId);
    EXPECT_NE(at, 0) << "no PCI Express capability";
    return static_cast<uint16_t>(at + reg);
  }
  // Writes all ones and returns what reads back: the writable bits of a register whose
  // value is 0 (and whose RW1C bits are clear).
  static uint32_t WriteOnes(PciFunction& f, uint16_t offset, uint8_t width) {
    f.Write(offset, width, 0xFFFFFFFF);
    return f.Read(offset, width);
  }
};

TEST_F(PortTest, RootPortHasATypeOneBridgeHeader) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_TRUE(f.is_bridge());
  EXPECT_EQ(f.Read(cfg::kHeaderType, 1), 0x01u);
  EXPECT_EQ(f.Read(cfg::kClassCode, 3), 0x060400u);
  EXPECT_EQ(f.Read(cfg::kVendorId, 4), 0x000C1B36u);
  EXPECT_EQ(f.Read(cfg::kInterruptPin, 1), 1u);
  EXPECT_EQ(WriteOnes(f, cfg::kInterruptLine, 1), 0xFFu);
  EXPECT_EQ(WriteOnes(f, cfg::kCommand, 2), 0x0507u);
}

TEST_F(PortTest, SwitchUpstreamPortOnDeviceZeroStillHasAnInterruptPin) {
  PciFunction f = Make(SwitchUpstreamDevice("up", "rp"));
  EXPECT_EQ(f.Read(cfg::kHeaderType, 1), 0x01u);
  EXPECT_EQ(f.Read(cfg::kInterruptPin, 1), 1u);
}

TEST_F(PortTest, MultiFunctionBitKeepsTheHeaderLayout) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  f.SetMultiFunction();
  EXPECT_EQ(f.Read(cfg::kHeaderType, 1), 0x81u);
  PciFunction endpoint = Make(GpuLikeDevice("gpu", 1));
  endpoint.SetMultiFunction();
  EXPECT_EQ(endpoint.Read(cfg::kHeaderType, 1), 0x80u);
}

// 3.2.5: the bus numbers are RW; PCIe r5.0, 7.5.1.3: the secondary latency timer is RO 0.
TEST_F(PortTest, BusNumbersAreWritableAndTheSecondaryLatencyTimerIsNot) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(WriteOnes(f, bridge::kPrimaryBus, 4), 0x00FFFFFFu);
  f.Write(bridge::kPrimaryBus, 4, 0x00050100);
  EXPECT_EQ(f.Read(bridge::kSecondaryBus, 1), 1u);
  EXPECT_EQ(f.Read(bridge::kSubordinateBus, 1), 5u);
}

// Write all ones, read back the spec's masks: I/O base/limit 7:4 RW over 1h (32-bit), memory
// 15:4 RW over 0h, prefetchable 15:4 RW over 1h (64-bit), the upper registers all RW.
TEST_F(PortTest, WindowRegistersTakeTheSpecMasks) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(f.Read(bridge::kIoBase, 4), 0x00000101u);
  EXPECT_EQ(f.Read(bridge::kPrefetchBase, 4), 0x00010001u);
  EXPECT_EQ(WriteOnes(f, bridge::kIoBase, 2), 0xF1F1u);
  EXPECT_EQ(WriteOnes(f, bridge::kSecondaryStatus, 2), 0u);  // RW1C: ones do not set
  EXPECT_EQ(WriteOnes(f, bridge::kMemoryBase, 4), 0xFFF0FFF0u);
  EXPECT_EQ(WriteOnes(f, bridge::kPrefetchBase, 4), 0xFFF1FFF1u);
  EXPECT_EQ(WriteOnes(f, bridge::kPrefetchBaseUpper, 4), 0xFFFFFFFFu);
  EXPECT_EQ(WriteOnes(f, bridge::kPrefetchLimitUpper, 4), 0xFFFFFFFFu);
  EXPECT_EQ(WriteOnes(f, bridge::kIoBaseUpper, 4), 0xFFFFFFFFu);
  f.Write(bridge::kIoBase, 2, 0);
  f.Write(bridge::kPrefetchBase, 4, 0);
  EXPECT_EQ(f.Read(bridge::kIoBase, 2), 0x0101u);
  EXPECT_EQ(f.Read(bridge::kPrefetchBase, 4), 0x00010001u);
}

TEST_F(PortTest, BarsAndRomAreAbsent) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(WriteOnes(f, BarOffset(0), 4), 0u);
  EXPECT_EQ(WriteOnes(f, BarOffset(1), 4), 0u);
  EXPECT_EQ(WriteOnes(f, bridge::kRomBar, 4), 0u);
  EXPECT_EQ(f.RomAddress(), 0u);
}

// 0x2C and 0x30 are the type-0 subsystem IDs and ROM, but a type-1 header's prefetchable
// limit upper and I/O upper registers: a port's spec must not leak into them.
TEST_F(PortTest, TypeZeroFieldsAreNotWrittenIntoTheBridgeHeader) {
  DeviceSpec spec = RootPortDevice("rp", 2, 5, true);
  spec.subsystem_vendor_id = 0x1234;
  spec.subsystem_id = 0x5678;
  PciFunction f = Make(spec);
  EXPECT_EQ(f.Read(bridge::kPrefetchLimitUpper, 4), 0u);
  EXPECT_EQ(f.Read(bridge::kIoBaseUpper, 4), 0u);
}

// Bridge Control: parity error response, SERR# enable, ISA enable, VGA enable, VGA 16-bit
// decode, secondary bus reset are RW; the rest reads 0.
TEST_F(PortTest, BridgeControlTakesItsMask) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(WriteOnes(f, bridge::kBridgeControl, 2), 0x005Fu);
}

TEST_F(PortTest, PortsHavePmMsiAndPcieButNoMsix) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_NE(FindCapability(f, 0x01), 0);
  EXPECT_NE(FindCapability(f, 0x05), 0);
  EXPECT_NE(FindCapability(f, pcie::kCapabilityId), 0);
  EXPECT_EQ(FindCapability(f, 0x11), 0);
}

// PCIe r5.0, 7.5.3: version 2 is 3Ch bytes; the capability after it starts there.
TEST_F(PortTest, PcieCapabilityIs3ChBytes) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  const uint16_t at = FindCapability(f, pcie::kCapabilityId);
  EXPECT_EQ(f.Read(static_cast<uint16_t>(at + 1), 1), at + pcie::kCapabilitySize);
}

// 7.5.3.2: version 2, Device/Port Type 4h (Root Port), Slot Implemented.
TEST_F(PortTest, RootPortIsType4WithASlot) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(f.Read(Pcie(f, pcie::kCapabilities), 2), 0x0142u);
  PciFunction no_slot = Make(RootPortDevice("rp", 3, 0, false));
  EXPECT_EQ(no_slot.Read(Pcie(no_slot, pcie::kCapabilities), 2), 0x0042u);
}

// 7.5.3.2: Slot Implemented "is valid for Downstream Ports" only, whatever the spec says.
TEST(PcieSlotTest, OnlyDownstreamPortsWithASlotImplementOne) {
  EXPECT_TRUE(PcieSlotImplemented(RootPortDevice("rp", 2, 1, false)));
  EXPECT_TRUE(PcieSlotImplemented(SwitchDownstreamDevice("dn", "up", 0, 1, false)));
  EXPECT_FALSE(PcieSlotImplemented(RootPortDevice("rp", 2, 0, false)));
  DeviceSpec up = SwitchUpstreamDevice("up", "rp");
  up.physical_slot = 1;
  EXPECT_FALSE(PcieSlotImplemented(up));
  DeviceSpec endpoint = GpuLikeDevice("gpu", 1);
  endpoint.physical_slot = 1;
  EXPECT_FALSE(PcieSlotImplemented(endpoint));
}

// 7.5.3.6 and 7.5.3.8: the link at its maximum speed and width, DLL Link Active Reporting
// Capable and Link Active on a downstream port, the port number its device number.
TEST_F(PortTest, RootPortLinkReportsSpeedWidthAndLinkActive) {
  DeviceSpec spec = RootPortDevice("rp", 2, 5, true);
  spec.link_speed = 3;
  spec.link_width = 8;
  PciFunction f = Make(spec);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities), 4),
            3u | 8u << 4 | pcie::kLinkActiveReportingCapable | 2u << 24);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkStatus), 2),
            3u | 8u << 4 | pcie::kLinkStatusSlotClock | pcie::kLinkStatusLinkActive);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities2), 4), 0x0Eu);  // 2.5, 5 and 8 GT/s
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkControl2), 2), 3u);
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kLinkControl2), 2), 0x000Fu);
}

// 7.5.3.7: bits 11:0 RW but Retrain Link (5), which reads 0.
TEST_F(PortTest, LinkControlRetrainLinkReadsZero) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kLinkControl), 2), 0x0FDFu);
}

// 7.5.3.9: physical slot number, 75 W, and the hot-plug elements pciehp drives.
TEST_F(PortTest, SlotCapabilitiesCarryThePhysicalSlotAndHotPlug) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  const uint32_t caps = f.Read(Pcie(f, pcie::kSlotCapabilities), 4);
  EXPECT_EQ(caps >> 19, 5u);
  EXPECT_EQ((caps >> 7) & 0xFF, 75u);  // Slot Power Limit Value
  EXPECT_EQ((caps >> 15) & 0x3, 0u);   // scale 1.0x
  EXPECT_EQ(caps & 0x7F, 0x5Bu);       // button, power ctl, attn and power ind., HP capable
  EXPECT_EQ(caps & (1u << 18), 0u);    // No Command Completed Support: 0
  PciFunction plain = Make(RootPortDevice("rp", 3, 6, false));
  EXPECT_EQ(plain.Read(Pcie(plain, pcie::kSlotCapabilities), 4), 6u << 19 | 75u << 7);
}

// 7.5.3.10: bits 12:0 RW but the write-only Electromechanical Interlock Control (11).
TEST_F(PortTest, SlotControlTakesItsMask) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, false));
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kSlotControl), 2), 0x17FFu);
}

// 7.5.3.11: the event bits are RW1C; Presence Detect State stays.
TEST_F(PortTest, SlotStatusEventsAreWriteOneToClear) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  const uint16_t status = Pcie(f, pcie::kSlotStatus);
  EXPECT_EQ(f.Read(status, 2), pcie::kSlotStatusPresenceDetect);
  f.EmulateRegister(status, 2, 0x015F, 0);  // every event pending (as hot-plug will set them)
  f.Write(status, 2,
          pcie::kSlotStatusAttentionButtonPressed | pcie::kSlotStatusPresenceDetectChanged);
  EXPECT_EQ(f.Read(status, 2), 0x0156u);
  f.Write(status, 2, 0xFFFF);
  EXPECT_EQ(f.Read(status, 2), pcie::kSlotStatusPresenceDetect);
}

// 7.5.3.12-14: Root Control 4:0 RW, Root Status PME Status RW1C.
TEST_F(PortTest, RootControlAndStatus) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kRootControl), 2), 0x001Fu);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kRootCapabilities), 2), 0u);
  const uint16_t status = Pcie(f, pcie::kRootStatus);
  f.EmulateRegister(status, 4, 1u << 16, 0);
  f.Write(status, 4, 1u << 16);
  EXPECT_EQ(f.Read(status, 4), 0u);
}

TEST_F(PortTest, SwitchUpstreamPortIsType5WithoutASlot) {
  PciFunction f = Make(SwitchUpstreamDevice("up", "rp"));
  EXPECT_EQ(f.Read(Pcie(f, pcie::kCapabilities), 2), 0x0052u);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kSlotCapabilities), 4), 0u);
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kSlotControl), 2), 0u);
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kRootControl), 2), 0u);
  // An upstream port reports no DLL Link Active (it is not capable), and has no Link Disable.
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities), 4), 4u | 16u << 4);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkStatus), 2), 4u | 16u << 4 | pcie::kLinkStatusSlotClock);
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kLinkControl), 2), 0x0FCFu);
}

TEST_F(PortTest, SwitchDownstreamPortIsType6) {
  PciFunction f = Make(SwitchDownstreamDevice("dn", "up", 3, 9, true));
  EXPECT_EQ(f.Read(Pcie(f, pcie::kCapabilities), 2), 0x0162u);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities), 4) >> 24, 3u);
  EXPECT_EQ(WriteOnes(f, Pcie(f, pcie::kRootControl), 2), 0u);  // not a root port
}

TEST_F(PortTest, EndpointReportsItsLink) {
  PciFunction f = Make(GpuLikeDevice("gpu", 1));
  EXPECT_FALSE(f.is_bridge());
  EXPECT_EQ(f.Read(Pcie(f, pcie::kCapabilities), 2), 0x0002u);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities), 4), 4u | 16u << 4);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkStatus), 2), 4u | 16u << 4);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kLinkCapabilities2), 4), 0x1Eu);
  EXPECT_EQ(f.Read(Pcie(f, pcie::kSlotCapabilities), 4), 0u);
  // Its 0x18 and 0x20 are BARs: BAR2 (BAR1's upper half) is not a bus number dword.
  f.ProgramBar(GpuLikeDevice("gpu", 1).bars[1], 0x20'0000'0000ull);
  ASSERT_EQ(f.Read(BarOffset(2), 4), 0x20u);
  EXPECT_EQ(f.bridge_registers().buses, 0u);
  EXPECT_EQ(f.bridge_registers().memory, 0u);
}

TEST_F(PortTest, ProgrammedBusesDecodeBack) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  f.ProgramBridgeBuses({0, 3, 7});
  const BridgeBuses b = DecodeBridgeBuses(f.bridge_registers());
  EXPECT_EQ(b.primary, 0);
  EXPECT_EQ(b.secondary, 3);
  EXPECT_EQ(b.subordinate, 7);
  EXPECT_EQ(f.Read(bridge::kPrimaryBus, 4), 0x00070300u);
}

TEST_F(PortTest, ProgrammedWindowsDecodeBack) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  BridgeWindows in;
  in.io = mmio::AddressRange::Make(0x1'3000, 0x2000);
  in.memory = mmio::AddressRange::Make(0xC0000000, 32ull << 20);
  in.prefetch = mmio::AddressRange::Make(0x40'0000'0000ull, 4ull << 30);
  f.ProgramBridgeWindows(in);
  f.SetCommand(cfg::kCommandMemory | cfg::kCommandIo);
  const BridgeWindows out = DecodeBridgeWindows(f.bridge_registers());
  EXPECT_EQ(out.io, in.io);
  EXPECT_EQ(out.memory, in.memory);
  EXPECT_EQ(out.prefetch, in.prefetch);
  EXPECT_TRUE(out.memory_enabled);
  EXPECT_TRUE(out.io_enabled);
  // The read-only low nibbles survive programming.
  EXPECT_EQ(f.Read(bridge::kIoBase, 1) & 0xF, 1u);
  EXPECT_EQ(f.Read(bridge::kPrefetchLimit, 2) & 0xF, 1u);
}

TEST_F(PortTest, ClosedWindowsAreBaseAboveLimit) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  BridgeWindows open;
  open.memory = mmio::AddressRange::Make(0xC0000000, 1 << 20);
  open.prefetch = mmio::AddressRange::Make(0x40'0000'0000ull, 1 << 20);
  open.io = mmio::AddressRange::Make(0x1000, 0x1000);
  f.ProgramBridgeWindows(open);
  f.ProgramBridgeWindows({});
  EXPECT_EQ(f.Read(bridge::kMemoryBase, 4), 0x0000FFF0u);  // base FFF0h, limit 0
  EXPECT_EQ(f.Read(bridge::kPrefetchBase, 4), 0x0001FFF1u);
  EXPECT_EQ(f.Read(bridge::kPrefetchBaseUpper, 4), 0u);
  const BridgeWindows out = DecodeBridgeWindows(f.bridge_registers());
  EXPECT_FALSE(out.io.has_value());
  EXPECT_FALSE(out.memory.has_value());
  EXPECT_FALSE(out.prefetch.has_value());
}

TEST_F(PortTest, WindowsAreWidenedToTheirGranularityOrClosedWhenOutOfReach) {
  PciFunction f = Make(RootPortDevice("rp", 2, 5, true));
  BridgeWindows in;
  in.memory = mmio::AddressRange::Make(0xC0080000, 0x1000);
  in.io = mmio::AddressRange::Make(0x2800, 0x100);
  in.prefetch = mmio::AddressRange::Make(0xFFFFFFFF'00000000ull, 0xFFFFFFFFull);
  f.ProgramBridgeWindows(in);
  BridgeWindows out = DecodeBridgeWindows(f.bridge_registers());
  EXPECT_EQ(out.memory, mmio::AddressRange::Make(0xC0000000, 1 << 20));
  EXPECT_EQ(out.io, mmio::AddressRange::Make(0x2000, 0x1000));
  EXPECT_EQ(out.prefetch, in.prefetch);
  // The non-prefetchable window has 32-bit registers: one above 4 GiB cannot be held.
  in.memory = mmio::AddressRange::Make(0x1'0000'0000ull, 1 << 20);
  f.ProgramBridgeWindows(in);
  out = DecodeBridgeWindows(f.bridge_registers());
  EXPECT_FALSE(out.memory.has_value());
}

}  // namespace
}  // namespace pcivmm::pci

namespace pcivmm::pci {
namespace {

// Readers take no lock: under TSan this shows the atomic dword protocol is race-free, and a
// reader only ever sees whole values that were written.
TEST(PciFunctionConcurrencyTest, LockFreeReadersSeeOnlyWholeWrittenValues) {
  alignas(4) static uint8_t storage[kConfigSpaceSize];
  DeviceSpec spec;
  spec.vendor_id = 0x1234;
  spec.bars = {{0, BarKind::kMem32, 1 << 20, false}};
  PciFunction f(spec, absl::MakeSpan(storage));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint32_t i = 0; i < 20000; ++i)
      f.Write(cfg::kBar0, 4, (i & 1) != 0 ? 0xAAA00000 : 0x55500000);
    done = true;
  });
  while (!done) {
    const uint32_t v = f.Read(cfg::kBar0, 4);
    ASSERT_TRUE(v == 0 || v == 0xAAA00000 || v == 0x55500000) << std::hex << v;
  }
  writer.join();
}

}  // namespace
}  // namespace pcivmm::pci
