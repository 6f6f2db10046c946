#include "pci/vfio/passthrough_function.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include "gtest/gtest.h"
#include "pci/firmware.h"
#include "pci/le_bytes.h"
#include "pci/vfio/fake_passthrough_device.h"

namespace pcivmm::vfio {
namespace {

using ::pcivmm::vfio::testing::FakePassthroughDevice;

class FakeKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region&) override {
    return absl::OkStatus();
  }
};

class FakeRouter : public InterruptRouter {
 public:
  struct Route {
    int fd;
    uint64_t address;
    uint32_t data;
  };
  absl::StatusOr<int> AddMsiRoute(int fd, uint64_t address, uint32_t data) override {
    routes[next] = {fd, address, data};
    return next++;
  }
  absl::Status UpdateMsiRoute(int route, uint64_t address, uint32_t data) override {
    routes.at(route).address = address;
    routes.at(route).data = data;
    return absl::OkStatus();
  }
  absl::Status RemoveMsiRoute(int route) override {
    routes.erase(route);
    return absl::OkStatus();
  }
  absl::Status AddIntxRoute(int trigger, int resample, uint32_t gsi) override {
    intx = {trigger, resample, gsi};
    return absl::OkStatus();
  }
  absl::Status RemoveIntxRoute(int, uint32_t) override {
    intx.reset();
    return absl::OkStatus();
  }
  std::map<int, Route> routes;
  struct Intx {
    int trigger;
    int resample;
    uint32_t gsi;
  };
  std::optional<Intx> intx;
  int next = 100;
};

constexpr uint64_t kRamEnd = 1ull << 30;
constexpr pci::Bdf kBdf{0, 3, 0};
constexpr uint16_t kMsiCap = 0x40;
constexpr uint32_t kIntxGsi = 19;

// An edu-like device: 1 MiB mappable BAR0, a 16 MiB 64-bit prefetchable mappable BAR2,
// a 256-byte BAR4 (traps), MSI (64-bit) at 0x40, MSI-X at 0x50, PM at 0x60.
void MakeEduLike(FakePassthroughDevice& d) {
  d.SetConfig(pci::cfg::kVendorId, 2, 0x1234);
  d.SetConfig(pci::cfg::kDeviceId, 2, 0x11E8);
  d.SetConfig(pci::cfg::kCommand, 2, 0x0000);
  d.SetConfig(pci::cfg::kStatus, 2, 0x0010);
  d.SetConfig(pci::cfg::kRevisionId, 1, 0x10);
  d.SetConfig(pci::cfg::kClassCode, 3, 0x00FF00);
  d.SetConfig(pci::cfg::kHeaderType, 1, 0x80);  // multi-function on the host
  d.SetConfig(pci::cfg::kSubsystemVendorId, 2, 0x1AF4);
  d.SetConfig(pci::cfg::kSubsystemId, 2, 0x1100);
  d.SetConfig(pci::BarOffset(0), 4, 0xFEA00000);
  d.SetConfig(pci::BarOffset(2), 4, 0xE000000C);
  d.SetConfig(pci::BarOffset(4), 4, 0xFEB13000);
  d.SetConfig(pci::cfg::kCapabilitiesPointer, 1, kMsiCap);
  d.SetConfig(pci::cfg::kInterruptLine, 1, 0x0B);
  d.SetConfig(pci::cfg::kInterruptPin, 1, 0x01);
  d.SetConfig(kMsiCap, 4, 0x0080'5005);  // MSI, next 0x50, 64-bit capable
  d.SetConfig(0x50, 4, 0x000F'6011);     // MSI-X, 16 entries, next 0x60
  d.SetConfig(0x54, 4, 0x0000'2000);     // table in BAR0 at 0x2000
  d.SetConfig(0x58, 4, 0x0000'3800);     // PBA in BAR0 at 0x3800
  d.SetConfig(0x60, 4, 0x0003'0001);     // PM, end
  d.AddBar(0, 1 << 20, true);
  d.AddBar(2, 16 << 20, true);
  d.AddBar(4, 256, false);
  d.irq_counts_ = {1, 1, 0};
}

class PassthroughFunctionTest : public ::testing::Test {
 protected:
  void Build(PassthroughOptions o = {}, pci::MapPolicy policy = pci::MapPolicy::kEager,
             const std::function<void(FakePassthroughDevice&)>& tweak = nullptr) {
    MakeEduLike(dev_);
    if (tweak) tweak(dev_);
    bus_ = *pci::PciBus::Create(1);
    ASSERT_TRUE(bus_->AddDevice(pci::HostBridgeDevice()).ok());
    o.slot = kBdf.device;
    auto p = PassthroughFunction::Create(dev_, *bus_, o);
    ASSERT_TRUE(p.ok()) << p.status();
    pt_ = std::move(*p);
    ASSERT_TRUE(pci::AssignPciResources(*bus_, *pci::DefaultPciWindows(kRamEnd, 40), {}).ok());
    pci::BarMapper::Options mo;
    mo.policy = policy;
    mo.phys_bits = 40;
    mo.reserved = {*mmio::AddressRange::Make(0, kRamEnd)};
    mapper_ = std::make_unique<pci::BarMapper>(slots_, mo);
    ASSERT_TRUE(pt_->Activate(mmio_, pio_, *mapper_, &router_, kIntxGsi).ok());
    dev_.config_writes_.clear();
  }
  uint32_t Read(uint16_t reg, uint8_t width) {
    return bus_->Read(pci::ConfigPath::kPio, kBdf, reg, width, 0);
  }
  void Write(uint16_t reg, uint8_t width, uint32_t v) {
    bus_->Write(pci::ConfigPath::kPio, kBdf, reg, width, v, 0);
  }
  uint64_t Bar(int i) { return f().BarAddress(*BarSpecOf(i)); }
  const pci::BarSpec* BarSpecOf(int i) {
    for (const pci::BarSpec& b : f().spec().bars) {
      if (b.index == i) return &b;
    }
    return nullptr;
  }
  pci::PciFunction& f() { return pt_->function(); }
  uint32_t MmioRead32(uint64_t addr) {
    uint8_t b[4];
    mmio_.Read(addr, absl::MakeSpan(b), 0);
    return pci::LoadLe(b);
  }
  bool DeviceWriteTouched(uint16_t from, uint16_t len) {
    for (const auto& w : dev_.config_writes_) {
      if (pci::AccessTouches(static_cast<uint32_t>(w.offset), static_cast<uint32_t>(w.bytes.size()),
                             from, len)) {
        return true;
      }
    }
    return false;
  }

  // Destroyed bottom-up: the function first (it unregisters from the buses and the router),
  // then the mapper (its slots cover the device's memory), the device last.
  FakePassthroughDevice dev_;
  std::unique_ptr<pci::PciBus> bus_;
  mmio::Bus mmio_{"mmio", UINT64_MAX};
  mmio::Bus pio_{"pio", 0x10000};
  FakeKvm kvm_;
  mmio::MemslotTable slots_{&kvm_, 64};
  FakeRouter router_;
  std::unique_ptr<pci::BarMapper> mapper_;
  std::unique_ptr<PassthroughFunction> pt_;
};

TEST_F(PassthroughFunctionTest, SpecTakesIdsFromTheDeviceAndBarSizesFromItsRegions) {
  MakeEduLike(dev_);
  auto s = PassthroughSpec(dev_, {.name = "edu", .slot = 5});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->vendor_id, 0x1234);
  EXPECT_EQ(s->device_id, 0x11E8);
  EXPECT_EQ(s->class_code, 0x00FF00u);
  EXPECT_EQ(s->revision, 0x10);
  EXPECT_EQ(s->subsystem_vendor_id, 0x1AF4);
  ASSERT_EQ(s->bars.size(), 3u);
  EXPECT_EQ(s->bars[0].kind, pci::BarKind::kMem32);
  EXPECT_EQ(s->bars[0].size, 1u << 20);
  EXPECT_EQ(s->bars[1].kind, pci::BarKind::kMem64);
  EXPECT_TRUE(s->bars[1].prefetchable);
  EXPECT_EQ(s->bars[1].size, 16u << 20);
  EXPECT_EQ(s->bars[2].size, 256u);  // sub-page: allowed for a real device
  EXPECT_TRUE(s->passthrough);
  EXPECT_FALSE(s->ecam_fast_path);
}

TEST_F(PassthroughFunctionTest, BridgesAreRefused) {
  MakeEduLike(dev_);
  dev_.SetConfig(pci::cfg::kHeaderType, 1, 0x01);
  EXPECT_EQ(PassthroughSpec(dev_, {}).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PassthroughFunctionTest, GuestSeesDeviceRegistersAndFirmwareBars) {
  Build();
  EXPECT_EQ(Read(pci::cfg::kVendorId, 4), 0x11E81234u);
  EXPECT_EQ(Read(pci::cfg::kStatus, 2) & 0x10, 0x10u);
  EXPECT_EQ(Read(pci::cfg::kInterruptPin, 1), 1u);
  EXPECT_EQ(Read(pci::cfg::kHeaderType, 1), 0u);  // emulated: one function on the guest's bus
  EXPECT_EQ(Read(pci::BarOffset(0), 4), static_cast<uint32_t>(Bar(0)));
  EXPECT_NE(Bar(0), 0xFEA00000u);
  EXPECT_GE(Bar(2), 4ull << 30);
  Write(pci::BarOffset(4), 4, 0xFFFFFFFF);  // sizing: the region's size
  EXPECT_EQ(Read(pci::BarOffset(4), 4), 0xFFFFFF00u);
}

TEST_F(PassthroughFunctionTest, WritesToVmmOwnedFieldsNeverReachTheDevice) {
  Build();
  EXPECT_EQ(dev_.Config(pci::cfg::kCommand, 2) & pci::cfg::kCommandMemory,
            pci::cfg::kCommandMemory);
  Write(pci::cfg::kCommand, 2, pci::cfg::kCommandBusMaster);  // decode off, bus master on
  Write(pci::BarOffset(0), 4, 0xFFFFFFFF);
  Write(pci::BarOffset(2), 4, 0x12345000);
  Write(pci::cfg::kRomBar, 4, 0xFFFFFFFF);
  Write(pci::cfg::kInterruptLine, 1, 0x05);
  Write(pci::cfg::kHeaderType, 1, 0x7F);
  EXPECT_FALSE(DeviceWriteTouched(pci::BarOffset(0), 6 * 4));
  EXPECT_FALSE(DeviceWriteTouched(pci::cfg::kRomBar, 4));
  EXPECT_FALSE(DeviceWriteTouched(pci::cfg::kInterruptLine, 1));
  EXPECT_FALSE(DeviceWriteTouched(pci::cfg::kHeaderType, 1));
  EXPECT_EQ(dev_.Config(pci::BarOffset(0), 4), 0xFEA00000u);
  EXPECT_EQ(dev_.Config(pci::cfg::kInterruptLine, 1), 0x0Bu);
  // The command write did reach the device, with the guest's bus master and the VMM's decode.
  EXPECT_EQ(dev_.Config(pci::cfg::kCommand, 2),
            pci::cfg::kCommandMemory | pci::cfg::kCommandBusMaster);
  EXPECT_EQ(Read(pci::cfg::kCommand, 2), pci::cfg::kCommandBusMaster);
  EXPECT_EQ(Read(pci::cfg::kInterruptLine, 1), 0x05u);
  EXPECT_GE(pt_->counters().config_owned_writes, 4u);
}

TEST_F(PassthroughFunctionTest, MsiEnableRoutesTheGuestsMessageThroughAnEventfd) {
  Build();
  ASSERT_EQ(pt_->msi_capability(), kMsiCap);
  EXPECT_EQ(Read(kMsiCap + 2, 2) & 1, 0u);
  Write(kMsiCap + 4, 4, 0xFEE01000);
  Write(kMsiCap + 8, 4, 0);
  Write(kMsiCap + 12, 2, 0x0041);
  Write(kMsiCap + 2, 2, 0x0001);
  ASSERT_TRUE(pt_->msi_enabled());
  ASSERT_EQ(router_.routes.size(), 1u);
  const FakeRouter::Route r = router_.routes.begin()->second;
  EXPECT_EQ(r.address, 0xFEE01000u);
  EXPECT_EQ(r.data, 0x41u);
  EXPECT_EQ(dev_.irq_fds_[1], std::vector<int>{r.fd});
  Write(kMsiCap + 12, 2, 0x0042);  // retarget while enabled
  EXPECT_EQ(router_.routes.begin()->second.data, 0x42u);
  Write(kMsiCap + 2, 2, 0x0000);
  EXPECT_FALSE(pt_->msi_enabled());
  EXPECT_TRUE(router_.routes.empty());
  EXPECT_TRUE(dev_.irq_fds_[1].empty());
  EXPECT_FALSE(DeviceWriteTouched(kMsiCap + 2, 14));
}

TEST_F(PassthroughFunctionTest, IntxIsRoutedWithResampleAndPausedWhileMsiIsOn) {
  Build();
  ASSERT_TRUE(router_.intx.has_value());
  EXPECT_EQ(router_.intx->gsi, kIntxGsi);
  EXPECT_EQ(dev_.irq_fds_[0], std::vector<int>{router_.intx->trigger});
  EXPECT_EQ(dev_.unmask_fd_, router_.intx->resample);
  Write(kMsiCap + 2, 2, 0x0001);
  EXPECT_TRUE(dev_.irq_fds_[0].empty());
  EXPECT_EQ(dev_.irq_fds_[1].size(), 1u);
  Write(kMsiCap + 2, 2, 0x0000);
  EXPECT_EQ(dev_.irq_fds_[0], std::vector<int>{router_.intx->trigger});
  pt_.reset();
  EXPECT_FALSE(router_.intx.has_value());
  EXPECT_TRUE(dev_.irq_fds_[0].empty());
}

TEST_F(PassthroughFunctionTest, MsixCapabilityIsUnlinkedFromTheGuestsList) {
  Build();
  std::vector<uint32_t> ids;
  for (uint32_t at = Read(pci::cfg::kCapabilitiesPointer, 1); at != 0 && ids.size() < 8;
       at = Read(static_cast<uint16_t>(at + 1), 1)) {
    ids.push_back(Read(static_cast<uint16_t>(at), 1));
  }
  EXPECT_EQ(ids, (std::vector<uint32_t>{0x05, 0x01}));
}

TEST_F(PassthroughFunctionTest, MsixTableAndPbaPagesStayOutOfTheSlots) {
  Build();
  std::vector<std::pair<uint64_t, uint64_t>> slots;
  for (const mmio::Memslot& m : slots_.List()) slots.emplace_back(m.range.base(), m.range.size());
  std::sort(slots.begin(), slots.end());
  // BAR0 (1 MiB) around the table page 0x2000 and the PBA page 0x3000; BAR2 whole.
  const std::vector<std::pair<uint64_t, uint64_t>> want = {
      {Bar(0), 0x2000}, {Bar(0) + 0x4000, (1 << 20) - 0x4000}, {Bar(2), 16 << 20}};
  EXPECT_EQ(slots, want);
  const uint32_t pattern = 0x7AB1E000;
  std::memcpy(dev_.bar(0) + 0x2010, &pattern, 4);
  EXPECT_EQ(MmioRead32(Bar(0) + 0x2010), pattern);  // trapped, forwarded to the device
  EXPECT_EQ(pt_->counters().bar_reads, 1u);
}

TEST_F(PassthroughFunctionTest, TrappedBarForwardsAndReadsAllOnesWhileDecodeIsOff) {
  Build();
  const uint32_t pattern = 0xA5A5F00D;
  std::memcpy(dev_.bar(4) + 8, &pattern, 4);
  EXPECT_EQ(MmioRead32(Bar(4) + 8), pattern);
  Write(pci::cfg::kCommand, 2, 0);
  EXPECT_EQ(MmioRead32(Bar(4) + 8), 0xFFFFFFFFu);
  const uint8_t w[4] = {1, 2, 3, 4};
  mmio_.Write(Bar(4) + 8, w, 0);  // dropped
  Write(pci::cfg::kCommand, 2, pci::cfg::kCommandMemory);
  EXPECT_EQ(MmioRead32(Bar(4) + 8), pattern);
  EXPECT_EQ(pt_->counters().bar_dropped, 2u);
  EXPECT_EQ(pt_->counters().bar_reads, 2u);
}

TEST_F(PassthroughFunctionTest, TrappedRangeFollowsTheBarWhenDecodeComesBackOn) {
  Build();
  const uint64_t old_base = Bar(4);
  const uint32_t pattern = 0x600DCAFE;
  std::memcpy(dev_.bar(4), &pattern, 4);
  Write(pci::cfg::kCommand, 2, 0);
  Write(pci::BarOffset(4), 4, 0xFFFFFFFF);  // sizing leaves the range where it was
  Write(pci::BarOffset(4), 4, 0xC8000000);
  Write(pci::cfg::kCommand, 2, pci::cfg::kCommandMemory);
  EXPECT_EQ(MmioRead32(0xC8000000), pattern);
  EXPECT_EQ(MmioRead32(old_base), 0xFFFFFFFFu);
  EXPECT_EQ(mmio_.unclaimed_reads(), 1u);
}

// The same answer as for a slot (DecodeBar): a 64-bit BAR rewritten with decode on decodes
// nowhere between its low and its high dword, so its trapping range waits for the high one.
TEST_F(PassthroughFunctionTest, TrappedRangeWaitsForTheHighHalfOfA64BitBar) {
  Build({.mmap_bars = false});
  const uint64_t old_base = Bar(2);
  const uint64_t target = 0x80'4000'0000ull;
  const uint64_t midway = (old_base & ~0xFFFFFFFFull) | 0x4000'0000ull;
  const uint32_t pattern = 0x5EC0DD00;
  std::memcpy(dev_.bar(2), &pattern, 4);
  Write(pci::BarOffset(2), 4, static_cast<uint32_t>(target));
  EXPECT_EQ(MmioRead32(midway), 0xFFFFFFFFu);    // no range there
  EXPECT_EQ(MmioRead32(old_base), 0xFFFFFFFFu);  // the range, inert
  EXPECT_EQ(mmio_.unclaimed_reads(), 1u);
  EXPECT_EQ(pt_->counters().bar_dropped, 1u);
  Write(pci::BarOffset(3), 4, static_cast<uint32_t>(target >> 32));
  EXPECT_EQ(MmioRead32(target), pattern);
  EXPECT_EQ(MmioRead32(old_base), 0xFFFFFFFFu);
  EXPECT_EQ(mmio_.unclaimed_reads(), 2u);
}

TEST_F(PassthroughFunctionTest, TrappedRangeStaysPutWhileA64BitBarsHighDwordIsSized) {
  Build({.mmap_bars = false});
  const uint64_t base = Bar(2);
  const uint32_t pattern = 0x0B5E55ED;
  std::memcpy(dev_.bar(2) + 4, &pattern, 4);
  const uint32_t high = Read(pci::BarOffset(3), 4);
  Write(pci::BarOffset(3), 4, 0xFFFFFFFF);  // sized with decode left on
  EXPECT_EQ(MmioRead32(base + 4), 0xFFFFFFFFu);
  EXPECT_EQ(pt_->counters().bar_dropped, 1u);
  Write(pci::BarOffset(3), 4, high);
  EXPECT_EQ(MmioRead32(base + 4), pattern);
  EXPECT_EQ(mmio_.unclaimed_reads(), 0u);
}

TEST_F(PassthroughFunctionTest, MappableBarsAreSlotsThatLeaveWhileDecodeIsOffEvenDeferred) {
  Build({}, pci::MapPolicy::kDeferred);
  EXPECT_EQ(mapper_->MappedAt(f(), 0), Bar(0));
  EXPECT_EQ(mapper_->MappedAt(f(), 2), Bar(2));
  EXPECT_FALSE(mapper_->MappedAt(f(), 4).has_value());  // sub-page: traps
  Write(pci::cfg::kCommand, 2, 0);
  EXPECT_FALSE(mapper_->MappedAt(f(), 0).has_value());
  EXPECT_FALSE(mapper_->MappedAt(f(), 2).has_value());
  Write(pci::cfg::kCommand, 2, pci::cfg::kCommandMemory);
  EXPECT_EQ(mapper_->MappedAt(f(), 2), Bar(2));
  EXPECT_EQ(mapper_->stats(f(), 2).maps, 2u);
  EXPECT_EQ(mapper_->stats(f(), 2).unmaps, 1u);
  auto backing = mapper_->Backing(f(), 2);
  ASSERT_TRUE(backing.ok());
  EXPECT_EQ(backing->data(), dev_.bar(2));
}

TEST_F(PassthroughFunctionTest, FastPathShadowIsRefreshedFromTheDeviceOnWrites) {
  Build({.config_fast_path = true});
  EXPECT_TRUE(f().spec().ecam_fast_path);
  EXPECT_EQ(f().ReadEmulated(pci::cfg::kVendorId, 4), 0x11E81234u);
  EXPECT_EQ(f().ReadEmulated(pci::BarOffset(0), 4), static_cast<uint32_t>(Bar(0)));
  dev_.SetConfig(pci::cfg::kStatus, 2, 0x4010);  // the device sets a status bit on its own
  EXPECT_EQ(f().ReadEmulated(pci::cfg::kStatus, 2), 0x0010u);  // stale until the next write
  EXPECT_EQ(Read(pci::cfg::kStatus, 2), 0x4010u);              // PIO reads the device
  Write(pci::cfg::kInterruptLine, 1, 0x0A);
  EXPECT_EQ(f().ReadEmulated(pci::cfg::kStatus, 2), 0x4010u);
  EXPECT_EQ(f().ReadEmulated(pci::cfg::kInterruptLine, 1), 0x0Au);
}

TEST_F(PassthroughFunctionTest, DeviceReadFailureReadsAllOnesAndIsCounted) {
  Build();
  dev_.FailReads(true);
  EXPECT_EQ(Read(pci::cfg::kVendorId, 2), 0xFFFFu);
  EXPECT_EQ(Read(pci::BarOffset(0), 4), static_cast<uint32_t>(Bar(0)));  // owned: no device read
  EXPECT_EQ(pt_->counters().device_errors, 1u);
}

TEST_F(PassthroughFunctionTest, RealDecodeIsSetAtActivationAndBusMasterCleared) {
  Build({}, pci::MapPolicy::kEager, [](FakePassthroughDevice& d) {
    d.SetConfig(pci::cfg::kCommand, 2, pci::cfg::kCommandBusMaster);
  });
  EXPECT_EQ(dev_.Config(pci::cfg::kCommand, 2), pci::cfg::kCommandMemory);
  EXPECT_EQ(pt_->real_decode_writes().count, 1u);
}

}  // namespace
}  // namespace pcivmm::vfio
