#include "pci/firmware.h"

#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"

namespace pcivmm::pci {
namespace {

class FirmwareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bus = PciBus::Create(1);
    ASSERT_TRUE(bus.ok());
    bus_ = std::move(*bus);
  }
  std::unique_ptr<PciBus> bus_;
};

TEST_F(FirmwareTest, GpusGetAlignedNonOverlappingBarsInTheRightWindows) {
  auto windows = DefaultPciWindows(1ull << 30, 48);
  ASSERT_TRUE(windows.ok());
  std::vector<PciFunction*> gpus;
  for (int slot = 1; slot <= 14; ++slot) {
    auto f = bus_->AddDevice(GpuLikeDevice("gpu", slot));
    ASSERT_TRUE(f.ok());
    gpus.push_back(*f);
  }
  ASSERT_TRUE(AssignPciResources(*bus_, *windows, {}).ok());
  std::vector<mmio::AddressRange> placed;
  for (PciFunction* f : gpus) {
    for (const BarSpec& b : f->spec().bars) {
      const uint64_t a = f->BarAddress(b);
      EXPECT_EQ(a % b.size, 0u);
      const mmio::AddressRange& w = b.prefetchable ? windows->mem64 : windows->mem32;
      EXPECT_TRUE(w.Contains(a, b.size)) << std::hex << a;
      placed.push_back(*mmio::AddressRange::Make(a, b.size));
    }
    EXPECT_TRUE(windows->mem32.Contains(f->RomAddress(), f->spec().rom_size));
    EXPECT_EQ(f->Read(cfg::kCommand, 2) & cfg::kCommandMemory, cfg::kCommandMemory);
  }
  for (size_t i = 0; i < placed.size(); ++i) {
    for (size_t j = i + 1; j < placed.size(); ++j) EXPECT_FALSE(placed[i].Overlaps(placed[j]));
  }
  EXPECT_GE(gpus[0]->BarAddress(gpus[0]->spec().bars[1]), 4ull << 30);
}

TEST_F(FirmwareTest, HandOffWithDecodeOffClearsTheMemoryBit) {
  ASSERT_TRUE(bus_->AddDevice(GpuLikeDevice("gpu", 1)).ok());
  ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1 << 30, 48), {false, false}).ok());
  EXPECT_EQ(bus_->functions()[0]->Read(cfg::kCommand, 2), 0u);
}

TEST_F(FirmwareTest, ConfigurationThatDoesNotFitSaysHowMuchIsMissing) {
  ASSERT_TRUE(bus_->AddDevice(GpuLikeDevice("a", 1, 512ull << 30)).ok());
  ASSERT_TRUE(bus_->AddDevice(GpuLikeDevice("b", 2, 512ull << 30)).ok());
  auto windows = DefaultPciWindows(1 << 30, 40);  // 1 TiB of physical address space
  ASSERT_TRUE(windows.ok());
  absl::Status st = AssignPciResources(*bus_, *windows, {});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("mem64"), std::string::npos) << st;
  EXPECT_NE(st.message().find("more bytes"), std::string::npos) << st;
}

TEST_F(FirmwareTest, WindowsRespectRamAndPhysBits) {
  auto w = DefaultPciWindows(6ull << 30, 40);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->mem64.base(), 6ull << 30);
  EXPECT_EQ(w->mem64.end(), 1ull << 40);
  EXPECT_EQ(w->mem32.end(), kEcamBase);
  EXPECT_EQ(DefaultPciWindows(1ull << 40, 40).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DefaultPciWindows(1 << 30, 60).status().code(), absl::StatusCode::kInvalidArgument);
}

// Firmware numbers buses depth first and opens each bridge's windows around what is behind it:
// root port 00:02.0 -> GPU; root port 00:03.0 -> switch (up, down0 with a GPU, down1 empty).
class FirmwareTopologyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bus = PciBus::Create(8);
    ASSERT_TRUE(bus.ok());
    bus_ = std::move(*bus);
    rp_a_ = Add(RootPortDevice("rp-a", 2, 1, false));
    gpu_a_ = Add(Behind(GpuLikeDevice("gpu-a", 0, 1ull << 30), "rp-a"));
    rp_b_ = Add(RootPortDevice("rp-b", 3, 2, false));
    up_ = Add(SwitchUpstreamDevice("up", "rp-b"));
    down0_ = Add(SwitchDownstreamDevice("down0", "up", 0, 3, false));
    down1_ = Add(SwitchDownstreamDevice("down1", "up", 1, 4, false));
    gpu_b_ = Add(Behind(GpuLikeDevice("gpu-b", 0, 4ull << 30), "down0"));
  }
  static DeviceSpec Behind(DeviceSpec d, const char* parent) {
    d.parent = parent;
    return d;
  }
  PciFunction* Add(const DeviceSpec& d) {
    auto f = bus_->AddDevice(d);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : nullptr;
  }
  static BridgeBuses Buses(const PciFunction* f) {
    return DecodeBridgeBuses(f->bridge_registers());
  }
  static BridgeWindows Windows(const PciFunction* f) {
    return DecodeBridgeWindows(f->bridge_registers());
  }
  std::unique_ptr<PciBus> bus_;
  PciFunction *rp_a_, *gpu_a_, *rp_b_, *up_, *down0_, *down1_, *gpu_b_;
};

TEST_F(FirmwareTopologyTest, BusesAreNumberedDepthFirst) {
  ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1ull << 30, 48), {}).ok());
  auto expect = [](const PciFunction* f, int p, int s, int u) {
    const BridgeBuses b = Buses(f);
    EXPECT_EQ(b.primary, p) << f->spec().name;
    EXPECT_EQ(b.secondary, s) << f->spec().name;
    EXPECT_EQ(b.subordinate, u) << f->spec().name;
  };
  expect(rp_a_, 0, 1, 1);
  expect(rp_b_, 0, 2, 5);
  expect(up_, 2, 3, 5);
  expect(down0_, 3, 4, 4);
  expect(down1_, 3, 5, 5);
  EXPECT_EQ(bus_->AddressOf(*gpu_b_), (Bdf{4, 0, 0}));
}

TEST_F(FirmwareTopologyTest, EveryBarSitsInsideEachWindowAboveIt) {
  ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1ull << 30, 48), {}).ok());
  for (PciFunction* gpu : {gpu_a_, gpu_b_}) {
    for (const BarSpec& b : gpu->spec().bars) {
      const uint64_t at = gpu->BarAddress(b);
      EXPECT_EQ(at % b.size, 0u);
      for (const PciFunction* p = gpu->parent(); p != nullptr; p = p->parent()) {
        const BridgeWindows w = Windows(p);
        EXPECT_TRUE(w.ForwardsMemory(at, b.size)) << gpu->spec().name << " BAR" << b.index << " at "
                                                  << std::hex << at << " via " << p->spec().name;
        const auto& window = b.prefetchable ? w.prefetch : w.memory;
        ASSERT_TRUE(window.has_value());
        EXPECT_TRUE(window->Contains(at, b.size));
      }
    }
  }
  EXPECT_FALSE(Windows(down1_).memory.has_value());  // nothing behind it: closed
  EXPECT_FALSE(Windows(down1_).prefetch.has_value());
  EXPECT_FALSE(Windows(rp_a_).io.has_value());
}

TEST_F(FirmwareTopologyTest, WindowsOfSiblingsDoNotOverlap) {
  ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(1ull << 30, 48), {}).ok());
  const auto a = Windows(rp_a_).prefetch, b = Windows(rp_b_).prefetch;
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_FALSE(a->Overlaps(*b));
  EXPECT_GE(a->size(), 1ull << 30);
  EXPECT_EQ(a->size() % (1u << 20), 0u);
}

TEST_F(FirmwareTopologyTest, TooFewBusesAreRefusedNamingBusCount) {
  auto bus = PciBus::Create(3);
  ASSERT_TRUE(bus.ok());
  ASSERT_TRUE((*bus)->AddDevice(RootPortDevice("rp", 2, 1, false)).ok());
  ASSERT_TRUE((*bus)->AddDevice(SwitchUpstreamDevice("up", "rp")).ok());
  ASSERT_TRUE((*bus)->AddDevice(SwitchDownstreamDevice("down", "up", 0, 2, false)).ok());
  const absl::Status st = AssignPciResources(**bus, *DefaultPciWindows(1ull << 30, 48), {});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("pci.bus_count: 3"), std::string::npos) << st;
}

}  // namespace
}  // namespace pcivmm::pci
