#include "pci/bar_mapper.h"

#include <vector>

#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"
#include "pci/firmware.h"

namespace pcivmm::pci {
namespace {

class FakeKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& r) override {
    if (r.memory_size != 0 && fail_installs > 0) {
      --fail_installs;
      return absl::ResourceExhaustedError("injected");
    }
    ++(r.memory_size == 0 ? deletes : installs);
    return absl::OkStatus();
  }
  int installs = 0;
  int deletes = 0;
  int fail_installs = 0;
};

constexpr uint64_t kRamEnd = 1ull << 30;
constexpr uint16_t kCmd = cfg::kCommand;

class BarMapperTest : public ::testing::Test {
 protected:
  void Build(MapPolicy policy, bool decode_on = true, int gpus = 2, CostModel cost = {}) {
    bus_ = *PciBus::Create(1);
    ASSERT_TRUE(bus_->AddDevice(HostBridgeDevice()).ok());
    for (int i = 0; i < gpus; ++i) {
      auto f = bus_->AddDevice(GpuLikeDevice("gpu", i + 1, 1ull << 30));
      ASSERT_TRUE(f.ok());
      gpus_.push_back(*f);
    }
    ASSERT_TRUE(
        AssignPciResources(*bus_, *DefaultPciWindows(kRamEnd, 40), {decode_on, false}).ok());
    ASSERT_TRUE(slots_.Install(0, kRamEnd, reinterpret_cast<void*>(0x7f0000000000), false).ok());
    BarMapper::Options o;
    o.policy = policy;
    o.cost = cost;
    o.phys_bits = 40;
    o.reserved = {*mmio::AddressRange::Make(0, kRamEnd),
                  *mmio::AddressRange::Make(kEcamBase, 1 << 20),
                  *mmio::AddressRange::Make(0xFEC00000, 0x1400000)};
    mapper_ = std::make_unique<BarMapper>(slots_, o);
    for (PciFunction* g : gpus_) ASSERT_TRUE(mapper_->Attach(*g).ok());
  }
  PciFunction& gpu(int i) { return *gpus_[static_cast<size_t>(i)]; }
  void Decode(PciFunction& f, bool on) { f.Write(kCmd, 2, on ? cfg::kCommandMemory : 0); }
  // Linux before 6.14: decode off, size, restore, decode on, around every BAR and the ROM.
  void LinuxSizing(PciFunction& f) {
    for (int bar : {0, 1, 3, 5, -1}) {
      const uint16_t cmd = static_cast<uint16_t>(f.Read(kCmd, 2));
      f.Write(kCmd, 2, cmd & ~cfg::kCommandMemory);
      const uint16_t off = bar < 0 ? cfg::kRomBar : BarOffset(bar);
      for (uint16_t o = off; o < off + ((bar == 1 || bar == 3) ? 8 : 4); o += 4) {
        const uint32_t orig = f.Read(o, 4);
        f.Write(o, 4, 0xFFFFFFFF);
        f.Write(o, 4, orig);
      }
      f.Write(kCmd, 2, cmd);
    }
  }
  FakeKvm kvm_;
  mmio::MemslotTable slots_{&kvm_, 512};
  std::unique_ptr<PciBus> bus_;
  std::vector<PciFunction*> gpus_;
  std::unique_ptr<BarMapper> mapper_;
};

TEST_F(BarMapperTest, HandOffWithDecodeOnMapsEveryMemoryBarAtItsAddress) {
  Build(MapPolicy::kEager);
  for (int bar : {0, 1, 3}) {
    EXPECT_EQ(mapper_->MappedAt(gpu(0), bar),
              gpu(0).BarAddress(gpu(0).spec().bars[bar == 0   ? 0
                                                   : bar == 1 ? 1
                                                              : 2]));
  }
  EXPECT_EQ(mapper_->Total().maps, 6u);
}

TEST_F(BarMapperTest, HandOffWithDecodeOffMapsNothing) {
  Build(MapPolicy::kEager, /*decode_on=*/false);
  EXPECT_EQ(mapper_->Total().maps, 0u);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0));
}

TEST_F(BarMapperTest, EagerUnmapsOnDecodeOffAndMapsOnDecodeOn) {
  Build(MapPolicy::kEager);
  Decode(gpu(0), false);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 1));
  EXPECT_EQ(mapper_->stats(gpu(0), 1).unmaps, 1u);
  Decode(gpu(0), true);
  EXPECT_TRUE(mapper_->MappedAt(gpu(0), 1));
  EXPECT_EQ(mapper_->stats(gpu(0), 1).maps, 2u);
  EXPECT_EQ(mapper_->stats(gpu(0), 1).ioctl.count, 3u);
}

TEST_F(BarMapperTest, EagerLinuxSizingCostsAMapAndUnmapPerBarPerProbe) {
  Build(MapPolicy::kEager);
  const BarMapStats before = mapper_->Total();
  LinuxSizing(gpu(0));
  const BarMapStats after = mapper_->Total();
  // Five probes (BAR0, 1, 3, 5, ROM), each unmapping and remapping the three memory BARs.
  EXPECT_EQ(after.unmaps - before.unmaps, 15u);
  EXPECT_EQ(after.maps - before.maps, 15u);
  EXPECT_EQ(after.moves, 0u);
  EXPECT_EQ(after.conflicts, 0u);
}

TEST_F(BarMapperTest, DeferredLinuxSizingCostsNothing) {
  Build(MapPolicy::kDeferred);
  const int installs = kvm_.installs, deletes = kvm_.deletes;
  LinuxSizing(gpu(0));
  LinuxSizing(gpu(1));
  EXPECT_EQ(kvm_.installs, installs);
  EXPECT_EQ(kvm_.deletes, deletes);
  EXPECT_EQ(mapper_->Total().conflicts, 0u);
}

TEST_F(BarMapperTest, SizingProbeWithDecodeOnIsNeverMapped) {
  Build(MapPolicy::kEager);
  const uint64_t addr = *mapper_->MappedAt(gpu(0), 0);
  gpu(0).Write(cfg::kBar0, 4, 0xFFFFFFFF);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0));
  EXPECT_EQ(mapper_->stats(gpu(0), 0).conflicts, 0u);  // a probe is not a conflict
  gpu(0).Write(cfg::kBar0, 4, static_cast<uint32_t>(addr));
  EXPECT_EQ(mapper_->MappedAt(gpu(0), 0), addr);
}

TEST_F(BarMapperTest, HalfWritten64BitBarIsNotMappedUntilTheHighHalfLands) {
  Build(MapPolicy::kEager);
  const uint64_t target = 0x80'0000'0000ull;  // 512 GiB, free in the 64-bit window
  gpu(0).Write(BarOffset(1), 4, static_cast<uint32_t>(target) | 0xC);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 1));
  gpu(0).Write(BarOffset(2), 4, static_cast<uint32_t>(target >> 32));
  EXPECT_EQ(mapper_->MappedAt(gpu(0), 1), target);
}

TEST_F(BarMapperTest, BarRewrittenWhileDecodingMovesTheSlot) {
  Build(MapPolicy::kDeferred);
  const uint64_t target = 0x80'0000'0000ull;
  gpu(1).Write(BarOffset(1), 4, static_cast<uint32_t>(target) | 0xC);
  gpu(1).Write(BarOffset(2), 4, static_cast<uint32_t>(target >> 32));
  EXPECT_EQ(mapper_->MappedAt(gpu(1), 1), target);
  EXPECT_EQ(mapper_->stats(gpu(1), 1).moves, 1u);
}

TEST_F(BarMapperTest, BarOverRamEcamApicOrBeyondPhysBitsIsRefusedAndCountedOnce) {
  Build(MapPolicy::kEager);
  // RAM, the ECAM window, the IOAPIC, the LAPIC page. BAR0 is 16 MiB: the last two both
  // decode at 0xFE000000, over both APICs: one address, one conflict.
  for (uint32_t bad : {0x00100000u, 0xE0000000u, 0xFEC00000u, 0xFEE00000u}) {
    gpu(0).Write(cfg::kBar0, 4, bad);
    EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0)) << std::hex << bad;
    gpu(0).Write(kCmd, 2, cfg::kCommandMemory);  // a second reconcile: not counted again
  }
  EXPECT_EQ(mapper_->stats(gpu(0), 0).conflicts, 3u);
  EXPECT_EQ(gpu(0).Read(cfg::kBar0, 4) & ~0xFu, 0xFE000000u);
  gpu(0).Write(BarOffset(2), 4, 0x1000);  // 16 TiB: beyond 40 bits
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 1));
  EXPECT_EQ(mapper_->stats(gpu(0), 1).conflicts, 1u);
}

TEST_F(BarMapperTest, BarOverAnotherDecodingBarIsRefused) {
  Build(MapPolicy::kEager);
  const uint64_t other = *mapper_->MappedAt(gpu(1), 0);
  gpu(0).Write(cfg::kBar0, 4, static_cast<uint32_t>(other));
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0));
  EXPECT_EQ(mapper_->MappedAt(gpu(1), 0), other);
  EXPECT_EQ(mapper_->stats(gpu(0), 0).conflicts, 1u);
}

TEST_F(BarMapperTest, DeferredEvictsAStaleSlotWhenAnotherBarNeedsItsRange) {
  Build(MapPolicy::kDeferred);
  const uint64_t stale = *mapper_->MappedAt(gpu(1), 0);
  Decode(gpu(1), false);  // deferred: the slot stays, stale
  EXPECT_EQ(mapper_->MappedAt(gpu(1), 0), stale);
  gpu(0).Write(cfg::kBar0, 4, static_cast<uint32_t>(stale));
  EXPECT_EQ(mapper_->MappedAt(gpu(0), 0), stale);
  EXPECT_FALSE(mapper_->MappedAt(gpu(1), 0));
  EXPECT_EQ(mapper_->stats(gpu(1), 0).unmaps, 1u);
}

TEST_F(BarMapperTest, SwitchingToEagerDropsStaleSlots) {
  Build(MapPolicy::kDeferred);
  Decode(gpu(0), false);
  EXPECT_TRUE(mapper_->MappedAt(gpu(0), 0));
  mapper_->SetPolicy(MapPolicy::kEager);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0));
}

TEST_F(BarMapperTest, CostModelIsReportedApartFromMeasuredTime) {
  Build(MapPolicy::kEager, true, 1, CostModel{1'000'000, /*sleep=*/false});
  const uint64_t at_hand_off = mapper_->stats(gpu(0), 1).modelled_ns;
  EXPECT_EQ(at_hand_off, 1'000'000u);  // BAR1 is 1 GiB here: one map
  Decode(gpu(0), false);
  Decode(gpu(0), true);
  EXPECT_EQ(mapper_->stats(gpu(0), 1).modelled_ns, 3'000'000u);
  EXPECT_EQ(mapper_->stats(gpu(0), 0).modelled_ns, 3 * 1'000'000u * 16 / 1024);
}

TEST_F(BarMapperTest, ResetStatsZeroesCountersButKeepsTheSlots) {
  Build(MapPolicy::kEager, /*decode_on=*/true, /*gpus=*/1, CostModel{1000, /*sleep=*/false});
  Decode(gpu(0), false);
  ASSERT_GT(mapper_->Total().unmaps, 0u);
  mapper_->ResetStats();
  const BarMapStats s = mapper_->stats(gpu(0), 1);
  EXPECT_EQ(s.maps + s.unmaps + s.ioctl.count + s.ioctl.max_ns + s.modelled_ns, 0u);
  Decode(gpu(0), true);
  EXPECT_EQ(mapper_->stats(gpu(0), 1).maps, 1u);
  EXPECT_EQ(mapper_->cost_model().ns_per_gib, 1000u);
}

TEST_F(BarMapperTest, BackingIsHostMemoryOfTheBarsSize) {
  Build(MapPolicy::kEager);
  auto b = mapper_->Backing(gpu(0), 3);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 32u << 20);
  (*b)[100] = 42;
  EXPECT_EQ((*mapper_->Backing(gpu(0), 3))[100], 42);
  EXPECT_EQ(mapper_->Backing(gpu(0), 2).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pcivmm::pci

namespace pcivmm::pci {
namespace {

class RecordingSink : public MapEventSink {
 public:
  void OnMapEvent(const MapEvent& e) override { events.push_back(e); }
  std::vector<MapEvent> events;
};

TEST_F(BarMapperTest, EveryOperationAndConflictIsReportedAsAnEvent) {
  Build(MapPolicy::kEager);
  RecordingSink sink;
  mapper_->SetEventSink(&sink);
  Decode(gpu(0), false);                    // three unmaps
  gpu(0).Write(cfg::kBar0, 4, 0xE0000000);  // onto ECAM, decode off: nothing yet
  Decode(gpu(0), true);                     // BAR0 conflict, BAR1 and BAR3 mapped
  mapper_->SetEventSink(nullptr);
  std::vector<MapEventKind> kinds;
  for (const MapEvent& e : sink.events) kinds.push_back(e.kind);
  EXPECT_EQ(kinds, (std::vector<MapEventKind>{MapEventKind::kUnmap, MapEventKind::kUnmap,
                                              MapEventKind::kUnmap, MapEventKind::kConflict,
                                              MapEventKind::kMap, MapEventKind::kMap}));
  EXPECT_EQ(sink.events[3].gpa, 0xE0000000u);
  EXPECT_EQ(sink.events[3].bar, 0);
  EXPECT_EQ(sink.events[3].bdf, (Bdf{0, 1, 0}));
  EXPECT_EQ(sink.events[4].size, 1ull << 30);
}

// The move's new slot is refused: the old one is put back (the rollback), then goes as a
// conflict's would, and the event feed hears both.
TEST_F(BarMapperTest, AFailedMoveIsRolledBackThenReportedAsAConflictAndAnUnmap) {
  Build(MapPolicy::kDeferred);
  const uint64_t old = *mapper_->MappedAt(gpu(0), 0);
  RecordingSink sink;
  mapper_->SetEventSink(&sink);
  const int installs = kvm_.installs, deletes = kvm_.deletes;
  kvm_.fail_installs = 1;
  gpu(0).Write(cfg::kBar0, 4, 0xD0000000);
  mapper_->SetEventSink(nullptr);
  EXPECT_FALSE(mapper_->MappedAt(gpu(0), 0));
  EXPECT_EQ(kvm_.installs - installs, 1);  // the rollback
  EXPECT_EQ(kvm_.deletes - deletes, 2);    // the move's removal, then the conflict's
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].kind, MapEventKind::kConflict);
  EXPECT_EQ(sink.events[0].gpa, 0xD0000000u);
  EXPECT_EQ(sink.events[1].kind, MapEventKind::kUnmap);
  EXPECT_EQ(sink.events[1].gpa, old);
  const BarMapStats s = mapper_->stats(gpu(0), 0);
  EXPECT_EQ(s.moves, 0u);
  EXPECT_EQ(s.conflicts, 1u);
  EXPECT_EQ(s.unmaps, 1u);
  Decode(gpu(0), true);  // the next reconcile maps it where the guest put it
  EXPECT_EQ(mapper_->MappedAt(gpu(0), 0), 0xD0000000u);
}

TEST_F(BarMapperTest, ExternalPiecesMustBeAlignedPartsOfAMemoryBar) {
  Build(MapPolicy::kDeferred, true, 0);
  DeviceSpec spec = GpuLikeDevice("real", 5, 1ull << 30);
  spec.passthrough = true;
  PciFunction& f = **bus_->AddDevice(spec);
  alignas(4096) static uint8_t page[4096];
  EXPECT_EQ(mapper_->AttachExternal(f, {{0, {{0x800, 4096, page}}}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mapper_->AttachExternal(f, {{0, {{0, 32ull << 20, page}}}}).code(),
            absl::StatusCode::kInvalidArgument);  // beyond the 16 MiB BAR0
  EXPECT_EQ(mapper_->AttachExternal(f, {{2, {{0, 4096, page}}}}).code(),
            absl::StatusCode::kInvalidArgument);  // no BAR2 (BAR1 is 64-bit)
  EXPECT_EQ(mapper_->AttachExternal(f, {{0, {{0, 4096, nullptr}}}}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pcivmm::pci
