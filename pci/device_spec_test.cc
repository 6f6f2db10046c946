#include "pci/device_spec.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::pci {
namespace {

TEST(DeviceSpecTest, ErrorsNameTheField) {
  DeviceSpec d = GpuLikeDevice("gpu0", 1);
  d.bars[1].size = 3 << 20;
  absl::Status st = ValidateDeviceSpec(d);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("devices[gpu0].bars[1].size"), std::string::npos) << st;
  d = GpuLikeDevice("gpu0", 1);
  d.bars[2].index = 2;  // BAR1 is 64-bit and takes BAR2
  EXPECT_NE(ValidateDeviceSpec(d).message().find("bars[2].index"), std::string::npos);
  d = GpuLikeDevice("gpu0", 32);
  EXPECT_NE(ValidateDeviceSpec(d).message().find("slot"), std::string::npos);
  d = GpuLikeDevice("gpu0", 1);
  d.vendor_id = 0xFFFF;
  EXPECT_NE(ValidateDeviceSpec(d).message().find("vendor_id"), std::string::npos);
  EXPECT_TRUE(ValidateDeviceSpec(GpuLikeDevice("ok", 2, 512ull << 30)).ok());
}

TEST(DeviceSpecTest, FactoriesValidate) {
  EXPECT_TRUE(ValidateDeviceSpec(HostBridgeDevice()).ok());
  EXPECT_TRUE(ValidateDeviceSpec(GpuLikeDevice("gpu", 1)).ok());
  EXPECT_TRUE(ValidateDeviceSpec(RootPortDevice("rp0", 2, 1, true)).ok());
  EXPECT_TRUE(ValidateDeviceSpec(RootPortDevice("rp1", 3, 0, false)).ok());
  EXPECT_TRUE(ValidateDeviceSpec(SwitchUpstreamDevice("up", "rp0")).ok());
  EXPECT_TRUE(ValidateDeviceSpec(SwitchDownstreamDevice("dn0", "up", 0, 8191, true)).ok());
  EXPECT_TRUE(ValidateDeviceSpec(SwitchDownstreamDevice("dn1", "up", 31, 0, false)).ok());
}

TEST(DeviceSpecTest, PortFactoriesSayWhatTheyAre) {
  const DeviceSpec rp = RootPortDevice("rp", 2, 7, true);
  EXPECT_EQ(rp.port, PortKind::kRootPort);
  EXPECT_EQ(rp.class_code, 0x060400u);
  EXPECT_TRUE(rp.parent.empty());
  EXPECT_EQ(rp.slot, 2);
  EXPECT_EQ(rp.physical_slot, 7);
  EXPECT_TRUE(rp.hotplug);
  const DeviceSpec up = SwitchUpstreamDevice("up", "rp");
  EXPECT_EQ(up.port, PortKind::kSwitchUpstream);
  EXPECT_EQ(up.parent, "rp");
  EXPECT_EQ(up.slot, 0);
  const DeviceSpec dn = SwitchDownstreamDevice("dn", "up", 3, 9, false);
  EXPECT_EQ(dn.port, PortKind::kSwitchDownstream);
  EXPECT_EQ(dn.parent, "up");
  EXPECT_EQ(dn.slot, 3);
  EXPECT_EQ(dn.physical_slot, 9);
  EXPECT_STREQ(PortKindName(PortKind::kSwitchDownstream), "switch downstream port");
}

struct PortRuleCase {
  const char* what;
  std::function<void(DeviceSpec&)> break_it;
  const char* field;  // "devices[NAME].FIELD:" must be in the message
};

// Each rule of ValidatePort, broken on a spec that is otherwise valid: the error is
// InvalidArgument and names the field (so a user finds the line in the VM config).
TEST(DeviceSpecTest, PortRuleErrorsNameTheirField) {
  const std::vector<PortRuleCase> cases = {
      {"port with a BAR",
       [](DeviceSpec& d) {
         d.bars = {{0, BarKind::kMem32, 4096, false}};
       },
       "bars"},
      {"port with a ROM", [](DeviceSpec& d) { d.rom_size = 4096; }, "bars"},
      {"port without PCIe", [](DeviceSpec& d) { d.pcie = false; }, "pcie"},
      {"root port with a parent", [](DeviceSpec& d) { d.parent = "rp9"; }, "parent"},
      {"downstream port without a parent",
       [](DeviceSpec& d) {
         d = SwitchDownstreamDevice("p", "up", 0, 0, false);
         d.parent.clear();
       },
       "parent"},
      {"upstream port without a parent",
       [](DeviceSpec& d) {
         d = SwitchUpstreamDevice("p", "rp");
         d.parent.clear();
       },
       "parent"},
      {"negative physical slot", [](DeviceSpec& d) { d.physical_slot = -1; }, "physical_slot"},
      {"physical slot above 8191", [](DeviceSpec& d) { d.physical_slot = 8192; }, "physical_slot"},
      {"upstream port with a slot",
       [](DeviceSpec& d) {
         d = SwitchUpstreamDevice("p", "rp");
         d.physical_slot = 1;
       },
       "physical_slot"},
      {"endpoint with a slot",
       [](DeviceSpec& d) {
         d = GpuLikeDevice("p", 1);
         d.physical_slot = 1;
       },
       "physical_slot"},
      {"hot-plug without a slot",
       [](DeviceSpec& d) {
         d.physical_slot = 0;
         d.hotplug = true;
       },
       "hotplug"},
      {"link speed 0", [](DeviceSpec& d) { d.link_speed = 0; }, "link_speed"},
      {"link speed 6 (no such generation)", [](DeviceSpec& d) { d.link_speed = 6; }, "link_speed"},
      {"link width 0", [](DeviceSpec& d) { d.link_width = 0; }, "link_width"},
      {"link width 3", [](DeviceSpec& d) { d.link_width = 3; }, "link_width"},
      {"link width 64", [](DeviceSpec& d) { d.link_width = 64; }, "link_width"},
  };
  for (const PortRuleCase& c : cases) {
    DeviceSpec d = RootPortDevice("p", 2, 1, false);
    ASSERT_TRUE(ValidateDeviceSpec(d).ok());
    c.break_it(d);
    const absl::Status st = ValidateDeviceSpec(d);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(st.message().find(std::string("devices[p].") + c.field + ":"), std::string::npos)
        << c.what << ": " << st;
  }
}

}  // namespace
}  // namespace pcivmm::pci
