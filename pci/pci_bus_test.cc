#include "pci/pci_bus.h"

#include "gtest/gtest.h"

namespace pcivmm::pci {
namespace {

constexpr ConfigPath kHost = ConfigPath::kHost;

class PciBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bus = PciBus::Create(8);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = std::move(*bus);
  }

  PciFunction* Add(const DeviceSpec& spec) {
    auto f = bus_->AddDevice(spec);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? *f : nullptr;
  }

  // What the guest's enumeration does: bus numbers into the bridge at `at`.
  void Number(Bdf at, uint8_t primary, uint8_t secondary, uint8_t subordinate) {
    bus_->Write(kHost, at, 0x18, 4, primary | secondary << 8 | subordinate << 16, 0);
  }

  uint32_t VendorDevice(Bdf at) { return bus_->Read(kHost, at, 0, 4, 0); }

  std::unique_ptr<PciBus> bus_;
};

constexpr uint32_t kGpuIds = 0x20B510DE;

TEST_F(PciBusTest, ADeviceBehindARootPortAnswersOnlyOnceTheBusIsNumbered) {
  Add(RootPortDevice("rp0", 2, 1, false));
  PciFunction* gpu = Add([] {
    DeviceSpec d = GpuLikeDevice("gpu0", 0, 1ull << 30);
    d.parent = "rp0";
    return d;
  }());
  EXPECT_EQ(bus_->Find({1, 0, 0}), nullptr);
  EXPECT_EQ(VendorDevice({1, 0, 0}), 0xFFFFFFFFu);
  Number({0, 2, 0}, 0, 1, 1);
  EXPECT_EQ(bus_->Find({1, 0, 0}), gpu);
  EXPECT_EQ(VendorDevice({1, 0, 0}), kGpuIds);
  EXPECT_EQ(bus_->AddressOf(*gpu), (Bdf{1, 0, 0}));
  EXPECT_EQ(gpu->parent(), bus_->Find({0, 2, 0}));
}

TEST_F(PciBusTest, APortForwardsOnlyDeviceZeroOfItsLink) {
  Add(RootPortDevice("rp0", 2, 1, false));
  DeviceSpec gpu = GpuLikeDevice("gpu0", 0, 1ull << 30);
  gpu.parent = "rp0";
  Add(gpu);
  Number({0, 2, 0}, 0, 1, 1);
  EXPECT_EQ(VendorDevice({1, 1, 0}), 0xFFFFFFFFu);  // PCIe r5.0, 7.3.1
  EXPECT_EQ(VendorDevice({1, 31, 0}), 0xFFFFFFFFu);
}

TEST_F(PciBusTest, RenumberingMovesTheDeviceAndKeepsItsCounters) {
  Add(RootPortDevice("rp0", 2, 1, false));
  DeviceSpec spec = GpuLikeDevice("gpu0", 0, 1ull << 30);
  spec.parent = "rp0";
  PciFunction* gpu = Add(spec);
  Number({0, 2, 0}, 0, 1, 1);
  VendorDevice({1, 0, 0});
  Number({0, 2, 0}, 0, 5, 5);
  EXPECT_EQ(VendorDevice({1, 0, 0}), 0xFFFFFFFFu);
  EXPECT_EQ(VendorDevice({5, 0, 0}), kGpuIds);
  EXPECT_EQ(bus_->AddressOf(*gpu), (Bdf{5, 0, 0}));
  const uint32_t index = bus_->IndexOf(*gpu);
  EXPECT_GE(index, kDevfnsPerBus);
  EXPECT_EQ(bus_->stats().register_accesses(kHost, mmio::Direction::kRead, index, 0), 2u);
  Number({0, 2, 0}, 0, 0, 0);  // unnumbered again: unreachable
  EXPECT_EQ(bus_->AddressOf(*gpu), std::nullopt);
}

// Root port 00:03.0 -> switch upstream port (bus 2) -> downstream ports 03:00.0 and 03:01.0
// -> a GPU behind the second (bus 5), as a depth-first numbering leaves them.
TEST_F(PciBusTest, TypeOneRequestsPassThroughASwitchToTheRightLink) {
  Add(RootPortDevice("rp", 3, 1, false));
  Add(SwitchUpstreamDevice("up", "rp"));
  Add(SwitchDownstreamDevice("down0", "up", 0, 2, false));
  Add(SwitchDownstreamDevice("down1", "up", 1, 3, false));
  DeviceSpec spec = GpuLikeDevice("gpu", 0, 1ull << 30);
  spec.parent = "down1";
  PciFunction* gpu = Add(spec);
  Number({0, 3, 0}, 0, 2, 5);
  Number({2, 0, 0}, 2, 3, 5);
  Number({3, 0, 0}, 3, 4, 4);
  Number({3, 1, 0}, 3, 5, 5);
  EXPECT_EQ(VendorDevice({2, 0, 0}), 0x8232104Cu);
  EXPECT_EQ(VendorDevice({3, 1, 0}), 0x8233104Cu);
  EXPECT_EQ(VendorDevice({3, 2, 0}), 0xFFFFFFFFu);  // no third downstream port
  EXPECT_EQ(VendorDevice({4, 0, 0}), 0xFFFFFFFFu);  // nothing behind down0
  EXPECT_EQ(bus_->Find({5, 0, 0}), gpu);
  EXPECT_EQ(VendorDevice({6, 0, 0}), 0xFFFFFFFFu);  // beyond every subordinate bus
  EXPECT_EQ(bus_->functions().size(), 5u);
}

TEST_F(PciBusTest, PlacementsPcieForbidsAreRefusedNamingTheField) {
  Add(RootPortDevice("rp", 2, 1, false));
  Add(SwitchUpstreamDevice("up", "rp"));
  DeviceSpec gpu = GpuLikeDevice("gpu", 1, 1ull << 30);
  gpu.parent = "nowhere";
  EXPECT_EQ(bus_->AddDevice(gpu).status().code(), absl::StatusCode::kNotFound);
  gpu.parent = "up";
  gpu.slot = 0;
  auto behind_upstream = bus_->AddDevice(gpu);
  EXPECT_EQ(behind_upstream.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(behind_upstream.status().message().find("devices[gpu].parent"), std::string::npos);
  Add(RootPortDevice("rp2", 4, 2, false));
  gpu.parent = "rp2";
  gpu.slot = 1;
  auto slot_one = bus_->AddDevice(gpu);
  EXPECT_EQ(slot_one.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(slot_one.status().message().find("devices[gpu].slot"), std::string::npos);
  auto down = bus_->AddDevice(SwitchDownstreamDevice("down", "rp2", 0, 3, false));
  EXPECT_EQ(down.status().code(), absl::StatusCode::kInvalidArgument);
  gpu.slot = 0;
  Add(gpu);
  EXPECT_EQ(bus_->AddDevice(gpu).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(PciBusTest, BusZeroKeepsDevfnIndicesAndAbsentFunctionsBeyondItCountOnlyInTotals) {
  PciFunction* gpu = Add(GpuLikeDevice("gpu", 1, 1ull << 30));
  EXPECT_EQ(bus_->IndexOf(*gpu), Bdf({0, 1, 0}).devfn());
  VendorDevice({3, 0, 0});
  EXPECT_EQ(bus_->stats().accesses(kHost, mmio::Direction::kRead), 1u);
  EXPECT_FALSE(bus_->has_bridges());
}

}  // namespace
}  // namespace pcivmm::pci
