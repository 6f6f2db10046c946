#include "pci/access/ecam_fast_path.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"
#include "pci/firmware.h"
#include "pci/le_bytes.h"

namespace pcivmm::pci {
namespace {

class FakeKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& r) override {
    calls.push_back(r);
    return absl::OkStatus();
  }
  std::vector<kvm_userspace_memory_region> calls;
};

class EcamFastPathTest : public ::testing::Test {
 protected:
  void Build(int buses, bool opt_out_slot2 = false) {
    auto bus = PciBus::Create(buses);
    ASSERT_TRUE(bus.ok());
    bus_ = std::move(*bus);
    ASSERT_TRUE(bus_->AddDevice(HostBridgeDevice()).ok());
    ASSERT_TRUE(bus_->AddDevice(GpuLikeDevice("gpu0", 1)).ok());
    DeviceSpec second = GpuLikeDevice("gpu1", 2);
    second.ecam_fast_path = !opt_out_slot2;
    ASSERT_TRUE(bus_->AddDevice(second).ok());
    ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1 << 30, 48), {}).ok());
    auto fp = EcamFastPath::Create(*bus_, slots_, kEcamBase);
    ASSERT_TRUE(fp.ok()) << fp.status();
    fast_ = std::move(*fp);
    ecam_ = std::make_unique<EcamConfigAccess>(bus_.get());
  }
  uint32_t TrapRead(uint64_t offset, size_t width) {
    uint8_t d[4];
    ecam_->Read(offset, absl::MakeSpan(d, width), 0);
    return LoadLe(absl::MakeConstSpan(d, width));
  }
  void TrapWrite(uint64_t offset, size_t width, uint32_t v) {
    uint8_t d[4];
    StoreLe(v, absl::MakeSpan(d, width));
    ecam_->Write(offset, absl::MakeConstSpan(d, width), 0);
  }
  FakeKvm kvm_;
  mmio::MemslotTable slots_{&kvm_, 64};
  std::unique_ptr<PciBus> bus_;
  std::unique_ptr<EcamFastPath> fast_;
  std::unique_ptr<EcamConfigAccess> ecam_;
};

TEST_F(EcamFastPathTest, OneReadOnlySlotCoversTheWholeWindow) {
  Build(1);
  ASSERT_EQ(fast_->slot_ranges().size(), 1u);
  ASSERT_TRUE(fast_->Enable().ok());
  ASSERT_EQ(kvm_.calls.size(), 1u);
  EXPECT_EQ(kvm_.calls[0].flags, KVM_MEM_READONLY);
  EXPECT_EQ(kvm_.calls[0].guest_phys_addr, kEcamBase);
  EXPECT_EQ(kvm_.calls[0].memory_size, kEcamBytesPerBus);
  EXPECT_TRUE(fast_->enabled());
  ASSERT_TRUE(fast_->Enable().ok());  // idempotent
  EXPECT_EQ(kvm_.calls.size(), 1u);
}

TEST_F(EcamFastPathTest, OptedOutFunctionIsAHoleBetweenTwoSlots) {
  Build(1, /*opt_out_slot2=*/true);
  ASSERT_EQ(fast_->slot_ranges().size(), 2u);
  const uint64_t hole = kEcamBase + (2 << 15);
  EXPECT_EQ(fast_->slot_ranges()[0].end(), hole);
  EXPECT_EQ(fast_->slot_ranges()[1].base(), hole + 4096);
  EXPECT_EQ(fast_->slot_ranges()[1].end(), kEcamBase + kEcamBytesPerBus);
}

TEST_F(EcamFastPathTest, DisableRemovesTheSlots) {
  Build(1);
  ASSERT_TRUE(fast_->Enable().ok());
  ASSERT_TRUE(fast_->Disable().ok());
  EXPECT_FALSE(fast_->enabled());
  EXPECT_TRUE(slots_.List().empty());
  EXPECT_EQ(kvm_.calls.back().memory_size, 0u);
}

// The differential check: after any writes, every shadow byte equals what the trap path
// returns, on every bus.
TEST_F(EcamFastPathTest, ShadowEqualsTrapPathEverywhereAfterRandomWrites) {
  Build(2);
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t devfn = rng() % 24;
    const uint64_t reg = (rng() % 2) ? rng() % 0x40 : rng() % 0x1000;
    const size_t width = size_t{1} << (rng() % 3);
    TrapWrite(devfn << 12 | (reg & ~(width - 1)), width, static_cast<uint32_t>(rng()));
  }
  // Sizing leaves all-ones written to BARs: the shadow must show the size masks.
  TrapWrite((1 << 15) | cfg::kBar0, 4, 0xFFFFFFFF);
  EXPECT_EQ(LoadLe(fast_->window().subspan((1 << 15) | cfg::kBar0, 4)), 0xFF000000u);
  const auto window = fast_->window();
  for (uint64_t off = 0; off < window.size(); off += 4) {
    ASSERT_EQ(LoadLe(window.subspan(off, 4)), TrapRead(off, 4)) << std::hex << off;
  }
}

TEST_F(EcamFastPathTest, ShadowCostsAPagePerPresentFunctionPlusOne) {
  Build(1);
  EXPECT_EQ(fast_->shadow_bytes(), (bus_->functions().size() + 1) * 4096);
  Build(8);
  EXPECT_EQ(fast_->shadow_bytes(), (bus_->functions().size() + 1) * 4096 + kEcamBytesPerBus);
}

// Behind a root port: the shadow shows the GPU on whichever bus the port's secondary bus
// number says, and follows a renumbering the guest writes through ECAM (trapped).
class EcamFastPathTopologyTest : public EcamFastPathTest {
 protected:
  void BuildPort() {
    bus_ = *PciBus::Create(4);
    ASSERT_TRUE(bus_->AddDevice(RootPortDevice("rp", 2, 1, false)).ok());
    DeviceSpec gpu = GpuLikeDevice("gpu", 0, 1ull << 30);
    gpu.parent = "rp";
    ASSERT_TRUE(bus_->AddDevice(gpu).ok());
    ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1 << 30, 48), {}).ok());
    fast_ = *EcamFastPath::Create(*bus_, slots_, kEcamBase);
    ecam_ = std::make_unique<EcamConfigAccess>(bus_.get());
  }
  uint32_t Shadow(uint64_t offset) const { return LoadLe(fast_->window().subspan(offset, 4)); }
  static uint64_t At(int bus, int device, int reg = 0) {
    return static_cast<uint64_t>(bus) << 20 | static_cast<uint64_t>(device) << 15 |
           static_cast<uint64_t>(reg);
  }
};

TEST_F(EcamFastPathTopologyTest, TheShadowFollowsTheBusNumbersTheGuestWrites) {
  BuildPort();
  EXPECT_EQ(Shadow(At(1, 0)), 0x20B510DEu);  // firmware numbered the port's bus 1
  EXPECT_EQ(Shadow(At(1, 1)), 0xFFFFFFFFu);  // a link has device 0 only
  EXPECT_EQ(Shadow(At(3, 0)), 0xFFFFFFFFu);
  TrapWrite(At(0, 2, bridge::kSecondaryBus), 2, 0x0303);  // secondary 3, subordinate 3
  EXPECT_EQ(Shadow(At(3, 0)), 0x20B510DEu);
  EXPECT_EQ(Shadow(At(1, 0)), 0xFFFFFFFFu);
  EXPECT_EQ(TrapRead(At(3, 0), 4), Shadow(At(3, 0)));
  TrapWrite(At(3, 0, cfg::kCommand), 2, 0);  // a write through the trap shows in the shadow
  EXPECT_EQ(Shadow(At(3, 0, cfg::kCommand)) & 0xFFFF, 0u);
}

TEST_F(EcamFastPathTopologyTest, OneSlotCoversEveryBus) {
  BuildPort();
  ASSERT_EQ(fast_->slot_ranges().size(), 1u);
  EXPECT_EQ(fast_->slot_ranges()[0].size(), 4u << 20);
}

}  // namespace
}  // namespace pcivmm::pci
