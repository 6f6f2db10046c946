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

}  // namespace
}  // namespace pcivmm::pci
