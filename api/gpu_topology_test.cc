#include "api/gpu_topology.h"

#include "api/config_convert.h"
#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

// The topology as the VMM builds it: the config through VmSpecFromConfig.
VmSpec Spec(uint32_t gpus, const std::string& topology) {
  v1::VmConfig c;
  c.mutable_test_guest()->set_image_path("g.bin");
  EXPECT_TRUE(SetGpuTopology(gpus, 1, topology, c.mutable_pci()).ok());
  auto spec = VmSpecFromConfig(c);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : VmSpec();
}

TEST(GpuTopologyTest, FlatPutsTheGpusOnBusZero) {
  const VmSpec s = Spec(3, "flat");
  ASSERT_EQ(s.pci.devices.size(), 3u);
  EXPECT_EQ(s.pci.devices[2].slot, 3);
  EXPECT_EQ(s.pci.devices[2].parent, "");
  EXPECT_EQ(s.pci.bus_count, 1);
}

TEST(GpuTopologyTest, RootPortsGiveEachGpuItsOwnPortAndBus) {
  const VmSpec s = Spec(2, "root-ports");
  ASSERT_EQ(s.pci.devices.size(), 4u);  // ports first, then the GPUs
  EXPECT_EQ(s.pci.devices[0].port, pci::PortKind::kRootPort);
  EXPECT_EQ(s.pci.devices[1].slot, 2);
  EXPECT_EQ(s.pci.devices[1].physical_slot, 2);
  EXPECT_EQ(s.pci.devices[3].parent, "rp1");
  EXPECT_EQ(s.pci.devices[3].slot, 0);
  EXPECT_EQ(s.pci.bus_count, 3);
}

TEST(GpuTopologyTest, SwitchPutsTheGpusBehindItsDownstreamPorts) {
  const VmSpec s = Spec(2, "switch");
  ASSERT_EQ(s.pci.devices.size(), 6u);
  EXPECT_EQ(s.pci.devices[1].port, pci::PortKind::kSwitchUpstream);
  EXPECT_EQ(s.pci.devices[1].parent, "rp0");
  EXPECT_EQ(s.pci.devices[3].port, pci::PortKind::kSwitchDownstream);
  EXPECT_EQ(s.pci.devices[3].slot, 1);
  EXPECT_EQ(s.pci.devices[5].parent, "sw-down1");
  EXPECT_EQ(s.pci.bus_count, 5);
}

TEST(GpuTopologyTest, BadNamesAndTooManyGpusAreRefusedNamingTheFlag) {
  v1::PciConfig pci;
  absl::Status st = SetGpuTopology(1, 1, "tree", &pci);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("--topology"), std::string::npos);
  EXPECT_FALSE(SetGpuTopology(32, 1, "root-ports", &pci).ok());
  EXPECT_TRUE(SetGpuTopology(32, 1, "switch", &pci).ok());
}

// The config file's ports: each rule names its field.
TEST(GpuTopologyTest, PortRulesInTheConfigNameTheField) {
  auto error = [](const std::string& json) {
    auto c = ParseVmConfigJson(R"({"testGuest": {"imagePath": "g"}, "pci": )" + json + "}");
    EXPECT_TRUE(c.ok()) << c.status();
    auto spec = VmSpecFromConfig(*c);
    EXPECT_FALSE(spec.ok());
    return std::string(spec.status().message());
  };
  EXPECT_NE(error(R"({"ports": [{"name": "d", "kind": "PORT_KIND_SWITCH_DOWNSTREAM",
                      "parent": "up"}]})")
                .find("pci.ports[0].parent: 'up' is not a port listed before it"),
            std::string::npos);
  EXPECT_NE(error(R"({"ports": [{"name": "rp", "kind": "PORT_KIND_ROOT_PORT", "slot": 0}]})")
                .find("pci.ports[0].slot"),
            std::string::npos);
  EXPECT_NE(error(R"({"ports": [{"name": "rp", "kind": "PORT_KIND_ROOT_PORT", "slot": 2,
                                 "hotplug": true}]})")
                .find("pci.ports[0].hotplug"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"devices": [{"name": "g", "port": "nope", "model": "DEVICE_MODEL_GPU_LIKE"}]})")
          .find("pci.devices[0].port: 'nope'"),
      std::string::npos);
  EXPECT_NE(error(R"({"ecamBuses": 1, "ports": [{"name": "rp", "kind": "PORT_KIND_ROOT_PORT",
                      "slot": 2}]})")
                .find("pci.ecam_buses: 1 is fewer than the 2"),
            std::string::npos);
  EXPECT_NE(error(R"({"ports": [{"name": "rp", "kind": "PORT_KIND_ROOT_PORT", "slot": 2}],
                      "devices": [{"name": "g", "slot": 2, "model": "DEVICE_MODEL_GPU_LIKE"}]})")
                .find("pci.devices[0].slot: 2 is used twice"),
            std::string::npos);
}

TEST(GpuTopologyTest, PortsSurviveTheRoundTripThroughTheSpec) {
  const VmSpec s = Spec(2, "switch");
  const v1::VmConfig back = ConfigFromSpec(s);
  ASSERT_EQ(back.pci().ports_size(), 4);
  EXPECT_EQ(back.pci().ports(3).name(), "sw-down1");
  EXPECT_EQ(back.pci().ports(3).physical_slot(), 2u);
  ASSERT_EQ(back.pci().devices_size(), 2);
  EXPECT_EQ(back.pci().devices(1).port(), "sw-down1");
}

}  // namespace
}  // namespace pcivmm::api
