// The vBAR mapper below a bridge: a BAR decodes only while every bridge above forwards it
// (PCI-to-PCI Bridge Architecture 1.2, 4.3: inside a window, Memory Space on).
#include <vector>

#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"
#include "pci/bar_mapper.h"
#include "pci/firmware.h"

namespace pcivmm::pci {
namespace {

class CountingKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region&) override {
    return absl::OkStatus();
  }
};

constexpr uint64_t kRamEnd = 1ull << 30;

class BarMapperBridgeTest : public ::testing::Test {
 protected:
  // Root port 00:02.0 with a GPU-like device behind it (BAR0 32-bit, BAR1 and BAR3 64-bit
  // prefetchable), resources assigned by firmware, decode on.
  void Build(MapPolicy policy) {
    bus_ = *PciBus::Create(2);
    port_ = *bus_->AddDevice(RootPortDevice("rp", 2, 1, false));
    DeviceSpec spec = GpuLikeDevice("gpu", 0, 1ull << 30);
    spec.parent = "rp";
    gpu_ = *bus_->AddDevice(spec);
    ASSERT_TRUE(AssignPciResources(*bus_, *DefaultPciWindows(kRamEnd, 40), {}).ok());
    BarMapper::Options o;
    o.policy = policy;
    o.phys_bits = 40;
    o.reserved = {*mmio::AddressRange::Make(0, kRamEnd)};
    mapper_ = std::make_unique<BarMapper>(slots_, o);
    mapper_->WatchBridge(*port_);
    ASSERT_TRUE(mapper_->Attach(*gpu_, {port_}).ok());
  }
  bool Mapped(int bar) { return mapper_->MappedAt(*gpu_, bar).has_value(); }
  uint64_t Unmaps() { return mapper_->Total().unmaps; }
  // The guest's write of a bridge register (the mapper hears it through the observer).
  void PortWrite(uint16_t reg, uint8_t width, uint32_t value) { port_->Write(reg, width, value); }

  CountingKvm kvm_;
  mmio::MemslotTable slots_{&kvm_, 64};
  std::unique_ptr<PciBus> bus_;
  PciFunction* port_ = nullptr;
  PciFunction* gpu_ = nullptr;
  std::unique_ptr<BarMapper> mapper_;
};

TEST_F(BarMapperBridgeTest, FirmwarePutsEveryBarInsideThePortsWindowsAndTheyMap) {
  Build(MapPolicy::kEager);
  EXPECT_TRUE(Mapped(0));
  EXPECT_TRUE(Mapped(1));
  EXPECT_TRUE(Mapped(3));
}

TEST_F(BarMapperBridgeTest, ThePortsMemorySpaceGatesEveryBarBelowIt) {
  Build(MapPolicy::kEager);
  PortWrite(cfg::kCommand, 2, cfg::kCommandIo);  // memory off
  EXPECT_FALSE(Mapped(0));
  EXPECT_FALSE(Mapped(1));
  EXPECT_FALSE(Mapped(3));
  EXPECT_EQ(Unmaps(), 3u);
  PortWrite(cfg::kCommand, 2, cfg::kCommandIo | cfg::kCommandMemory);
  EXPECT_TRUE(Mapped(0));
  EXPECT_TRUE(Mapped(1));
  EXPECT_TRUE(Mapped(3));
}

TEST_F(BarMapperBridgeTest, ClosingThePrefetchableWindowUnmapsOnlyWhatItForwarded) {
  Build(MapPolicy::kEager);
  PortWrite(bridge::kPrefetchBase, 4, 0x0000FFF1);  // base 0xFFF0_0000 above limit 0: closed
  PortWrite(bridge::kPrefetchBaseUpper, 4, 0xFFFFFFFF);
  PortWrite(bridge::kPrefetchLimitUpper, 4, 0);
  EXPECT_TRUE(Mapped(0));  // BAR0 is in the non-prefetchable window
  EXPECT_FALSE(Mapped(1));
  EXPECT_FALSE(Mapped(3));
}

TEST_F(BarMapperBridgeTest, ABarMovedOutOfTheWindowIsNotDecodedUntilItComesBack) {
  Build(MapPolicy::kEager);
  const BarSpec& bar0 = gpu_->spec().bars[0];
  const uint64_t home = gpu_->BarAddress(bar0);
  const auto window = DecodeBridgeWindows(port_->bridge_registers()).memory;
  ASSERT_TRUE(window.has_value());
  const uint64_t outside = window->end() + (16u << 20);  // 16 MiB aligned, past the window
  gpu_->Write(BarOffset(0), 4, static_cast<uint32_t>(outside));
  EXPECT_FALSE(Mapped(0));
  gpu_->Write(BarOffset(0), 4, static_cast<uint32_t>(home));
  EXPECT_EQ(mapper_->MappedAt(*gpu_, 0), home);
}

TEST_F(BarMapperBridgeTest, DeferredKeepsTheSlotWhileThePortStopsForwarding) {
  Build(MapPolicy::kDeferred);
  PortWrite(cfg::kCommand, 2, 0);
  EXPECT_EQ(Unmaps(), 0u);  // the deferred trade-off, as for the device's own decode bit
  EXPECT_TRUE(Mapped(1));
}

}  // namespace
}  // namespace pcivmm::pci
