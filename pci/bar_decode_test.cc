#include "pci/bar_decode.h"

#include <vector>

#include "gtest/gtest.h"
#include "pci/pci_function.h"

namespace pcivmm::pci {
namespace {

constexpr uint16_t kMem = cfg::kCommandMemory;
constexpr uint16_t kIo = cfg::kCommandIo;

const BarSpec kBar0Mem32{0, BarKind::kMem32, 16 << 20, false};   // 16 MiB
const BarSpec kBar1Mem64{1, BarKind::kMem64, 1ull << 30, true};  // 1 GiB, BAR1..2
const BarSpec kBar3Big64{3, BarKind::kMem64, 8ull << 30, true};  // 8 GiB, BAR3..4
const BarSpec kBar5Io{5, BarKind::kIo, 256, false};

BarRegisters Regs(uint16_t command, std::vector<std::pair<int, uint32_t>> bars, uint32_t rom = 0) {
  BarRegisters r;
  r.command = command;
  for (const auto& [i, v] : bars) r.bars[static_cast<size_t>(i)] = v;
  r.rom = rom;
  return r;
}

TEST(BarDecodeTest, MemoryBarDecodesAtItsAddressWithTypeBitsStripped) {
  const BarPlacement p = DecodeBar(kBar0Mem32, Regs(kMem, {{0, 0xC1000008}}));
  EXPECT_EQ(p.decode, BarDecode::kDecoded);
  EXPECT_EQ(p.decoded_at(), 0xC1000000u);
  EXPECT_EQ(p.index, 0);
  EXPECT_EQ(p.kind, BarKind::kMem32);
  EXPECT_EQ(p.size, 16u << 20);
}

TEST(BarDecodeTest, ClearingMemorySpaceStopsMemoryBarsButNotIoBars) {
  const BarRegisters io_only = Regs(kIo, {{0, 0xC1000000}, {5, 0x1001}});
  EXPECT_EQ(DecodeBar(kBar0Mem32, io_only).decode, BarDecode::kDecodeOff);
  EXPECT_FALSE(DecodeBar(kBar0Mem32, io_only).decoded_at());
  EXPECT_EQ(DecodeBar(kBar0Mem32, io_only).address, 0xC1000000u);  // still reported
  EXPECT_EQ(DecodeBar(kBar5Io, io_only).decoded_at(), 0x1000u);
  const BarRegisters mem_only = Regs(kMem, {{5, 0x1001}});
  EXPECT_EQ(DecodeBar(kBar5Io, mem_only).decode, BarDecode::kDecodeOff);
}

// PCI 3.0, 6.2.5.1: software writes 0FFFFFFFFh and reads back 0's in the don't-care bits.
TEST(BarDecodeTest, AllOnesInTheAddressBitsIsASizingProbe) {
  EXPECT_EQ(DecodeBar(kBar0Mem32, Regs(kMem, {{0, 0xFF000000}})).decode, BarDecode::kSizingProbe);
  EXPECT_EQ(DecodeBar(kBar0Mem32, Regs(kMem, {{0, 0xFE000000}})).decode, BarDecode::kDecoded);
  EXPECT_EQ(DecodeBar(kBar5Io, Regs(kIo, {{5, 0xFFFFFF01}})).decode, BarDecode::kSizingProbe);
  EXPECT_EQ(DecodeBar(kBar5Io, Regs(kIo, {{5, 0x0000FF01}})).decode, BarDecode::kDecoded);
}

// A 64-bit BAR's halves are sized one after the other: the high dword decides.
TEST(BarDecodeTest, A64BitBarIsInAProbeWhileItsHighDwordIsAllOnes) {
  const BarRegisters high_probe = Regs(kMem, {{1, 0x4000000C}, {2, 0xFFFFFFFF}});
  EXPECT_EQ(DecodeBar(kBar1Mem64, high_probe).decode, BarDecode::kSizingProbe);
  // The low dword all ones is a real address under a real high dword.
  const BarRegisters low_ones = Regs(kMem, {{1, 0xC000000C}, {2, 0x1}});
  EXPECT_EQ(DecodeBar(kBar1Mem64, low_ones).decoded_at(), 0x1'C000'0000u);
  // 8 GiB: bit 32 of the address is a size bit, read-only zero, so it is not checked.
  const BarRegisters big = Regs(kMem, {{3, 0xC}, {4, 0xFFFFFFFE}});
  EXPECT_EQ(DecodeBar(kBar3Big64, big).decode, BarDecode::kSizingProbe);
  EXPECT_EQ(DecodeBar(kBar3Big64, Regs(kMem, {{3, 0xC}, {4, 0x2}})).decoded_at(), 0x2'0000'0000u);
}

TEST(BarDecodeTest, A64BitBarWithItsHighHalfPendingIsNotDecoded) {
  BarRegisters r = Regs(kMem, {{1, 0x4000000C}, {2, 0x1}});
  r.high_pending = 1u << 1;
  EXPECT_EQ(DecodeBar(kBar1Mem64, r).decode, BarDecode::kHighHalfPending);
  EXPECT_EQ(DecodeBar(kBar1Mem64, r).address, 0x1'4000'0000u);
  r.command = 0;  // decode off is the first reason
  EXPECT_EQ(DecodeBar(kBar1Mem64, r).decode, BarDecode::kDecodeOff);
  r.command = kMem;
  r.high_pending = 1u << 3;  // another BAR's half
  EXPECT_EQ(DecodeBar(kBar1Mem64, r).decode, BarDecode::kDecoded);
}

TEST(BarDecodeTest, WritingTheLowDwordLeavesTheHighHalfPendingUntilHighOrCommand) {
  DeviceSpec spec;
  spec.bars = {kBar0Mem32, kBar1Mem64, kBar3Big64};
  uint8_t p = NoteBarWrite(spec, 0, BarOffset(1), 4);
  EXPECT_EQ(p, 1u << 1);
  p = NoteBarWrite(spec, p, BarOffset(3), 1);  // any byte of the low dword
  EXPECT_EQ(p, (1u << 1) | (1u << 3));
  EXPECT_EQ(NoteBarWrite(spec, p, BarOffset(0), 4), p);  // a 32-bit BAR changes nothing
  EXPECT_EQ(NoteBarWrite(spec, p, cfg::kRomBar, 4), p);
  EXPECT_EQ(NoteBarWrite(spec, p, static_cast<uint16_t>(BarOffset(2) + 2), 2), 1u << 3);
  EXPECT_EQ(NoteBarWrite(spec, p, cfg::kCommand, 2), 0u);
  EXPECT_EQ(NoteBarWrite(spec, p, cfg::kStatus, 2), p);
}

// PCI 3.0, 6.2.5.2: the ROM decodes only with both Memory Space and its enable bit set.
TEST(BarDecodeTest, RomDecodesOnlyWithMemorySpaceAndItsEnableBit) {
  constexpr uint64_t kRom = 512 << 10;
  EXPECT_EQ(DecodeRom(kRom, Regs(kMem, {}, 0xC2000001)).decoded_at(), 0xC2000000u);
  EXPECT_EQ(DecodeRom(kRom, Regs(kMem, {}, 0xC2000000)).decode, BarDecode::kRomDisabled);
  EXPECT_EQ(DecodeRom(kRom, Regs(0, {}, 0xC2000001)).decode, BarDecode::kDecodeOff);
  EXPECT_EQ(DecodeRom(kRom, Regs(kMem, {}, 0xFFF80001)).decode, BarDecode::kSizingProbe);
  EXPECT_EQ(DecodeRom(kRom, Regs(kMem, {}, 0xFFF00001)).decode, BarDecode::kDecoded);
  const BarPlacement p = DecodeRom(kRom, Regs(kMem, {}, 0xC2000001));
  EXPECT_EQ(p.index, kRomIndex);
  EXPECT_EQ(p.size, kRom);
}

TEST(BarDecodeTest, DecodeBarsListsEveryBarThenTheRom) {
  DeviceSpec spec;
  spec.bars = {kBar0Mem32, kBar1Mem64, kBar5Io};
  const BarRegisters r = Regs(kMem, {{0, 0xC1000000}, {1, 0xC}, {2, 0x4}, {5, 0x1001}});
  std::vector<int> indexes;
  for (const BarPlacement& p : DecodeBars(spec, r)) indexes.push_back(p.index);
  EXPECT_EQ(indexes, (std::vector<int>{0, 1, 5}));
  spec.rom_size = 64 << 10;
  EXPECT_EQ(DecodeBars(spec, r).back().index, kRomIndex);
  EXPECT_STREQ(BarDecodeName(BarDecode::kHighHalfPending), "high half pending");
}

// Linux (before 6.14) sizes a 64-bit BAR with decode off: off, low all ones, low restored,
// high all ones, high restored, on. With decode left on, no step in between decodes.
TEST(BarDecodeTest, A64BitBarSizedThroughAFunctionDecodesOnlyBeforeAndAfter) {
  alignas(4) static uint8_t storage[kConfigSpaceSize];
  DeviceSpec spec = GpuLikeDevice("gpu", 1, 1ull << 30);
  PciFunction f(spec, absl::MakeSpan(storage));
  const BarSpec& bar1 = f.spec().bars[1];
  f.ProgramBar(bar1, 0x4'0000'0000);
  f.SetCommand(kMem);
  auto decode = [&] { return DecodeBar(bar1, f.bar_registers()).decode; };
  EXPECT_EQ(decode(), BarDecode::kDecoded);
  const uint32_t low = f.Read(BarOffset(1), 4);
  f.Write(BarOffset(1), 4, 0xFFFFFFFF);
  EXPECT_EQ(decode(), BarDecode::kHighHalfPending);
  f.Write(BarOffset(1), 4, low);
  EXPECT_EQ(decode(), BarDecode::kHighHalfPending);
  f.Write(BarOffset(2), 4, 0xFFFFFFFF);
  EXPECT_EQ(decode(), BarDecode::kSizingProbe);
  f.Write(BarOffset(2), 4, 0x4);
  EXPECT_EQ(decode(), BarDecode::kDecoded);
  EXPECT_EQ(f.BarAddress(bar1), 0x4'0000'0000u);
  f.Write(BarOffset(1), 4, low);
  f.Write(cfg::kCommand, 2, kMem);  // a command write ends a half-written pair too
  EXPECT_EQ(decode(), BarDecode::kDecoded);
}

}  // namespace
}  // namespace pcivmm::pci
