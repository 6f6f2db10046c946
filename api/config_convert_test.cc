#include "api/config_convert.h"

#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

v1::VmConfig Parse(const std::string& json) {
  auto c = ParseVmConfigJson(json);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : v1::VmConfig();
}

std::string SpecError(const std::string& json) {
  auto spec = VmSpecFromConfig(Parse(json));
  EXPECT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

TEST(ConfigConvertTest, DefaultsMatchTheFlagDefaults) {
  auto spec = VmSpecFromConfig(Parse(R"({"testGuest": {"imagePath": "g.bin"}})"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->machine.ram_bytes, 64ull << 20);
  EXPECT_EQ(spec->machine.vcpus, 1);
  EXPECT_EQ(spec->pci.bus_count, 1);
  EXPECT_TRUE(spec->pci.pio_enabled);
  EXPECT_FALSE(spec->pci.ecam_fast_path);
  EXPECT_TRUE(spec->pci.hand_off.memory_decode);
  EXPECT_EQ(spec->pci.bar_policy, pci::MapPolicy::kEager);
  EXPECT_TRUE(spec->test_devices);
  EXPECT_EQ(std::get<TestGuestConfig>(spec->guest).image_path, "g.bin");
}

TEST(ConfigConvertTest, EveryFieldReachesTheSpec) {
  auto spec = VmSpecFromConfig(Parse(R"({
    "machine": {"ramMib": "256", "vcpus": 4},
    "pci": {"ecamBuses": 2, "pioEnabled": false, "ecamFastPath": true, "memoryDecode": false,
            "barPolicy": "BAR_POLICY_DEFERRED", "barCostNsPerGib": "14062500",
            "devices": [{"name": "g0", "slot": 3, "model": "DEVICE_MODEL_GPU_LIKE",
                         "bar1Gib": "64", "ecamFastPath": false}]},
    "linuxBoot": {"kernelPath": "/boot/vmlinuz", "initrdPath": "/i.cpio", "cmdline": "quiet"},
    "consolePath": "/tmp/console", "testDevices": false})"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->machine.ram_bytes, 256ull << 20);
  EXPECT_EQ(spec->machine.vcpus, 4);
  EXPECT_EQ(spec->pci.bus_count, 2);
  EXPECT_FALSE(spec->pci.pio_enabled);
  EXPECT_TRUE(spec->pci.ecam_fast_path);
  EXPECT_FALSE(spec->pci.hand_off.memory_decode);
  EXPECT_EQ(spec->pci.bar_policy, pci::MapPolicy::kDeferred);
  EXPECT_EQ(spec->pci.bar_cost.ns_per_gib, 14062500u);
  ASSERT_EQ(spec->pci.devices.size(), 1u);
  EXPECT_EQ(spec->pci.devices[0].slot, 3);
  EXPECT_EQ(spec->pci.devices[0].bars[1].size, 64ull << 30);
  EXPECT_FALSE(spec->pci.devices[0].ecam_fast_path);
  const auto& linux = std::get<platform::LinuxBootConfig>(spec->guest);
  EXPECT_EQ(linux.kernel_path, "/boot/vmlinuz");
  EXPECT_EQ(linux.initrd_path, "/i.cpio");
  EXPECT_EQ(linux.cmdline, "quiet");
  EXPECT_EQ(spec->console_path, "/tmp/console");
  EXPECT_FALSE(spec->test_devices);
}

TEST(ConfigConvertTest, BadFieldsAreNamed) {
  const std::string g = R"("testGuest": {"imagePath": "g"})";
  const std::pair<std::string, std::string> cases[] = {
      {R"({"machine": {"vcpus": 0}, )" + g + "}", "machine.vcpus"},
      {R"({"machine": {"vcpus": 65}, )" + g + "}", "machine.vcpus"},
      {R"({"machine": {"ramMib": "1"}, )" + g + "}", "machine.ram_mib"},
      {R"({"pci": {"ecamBuses": 0}, )" + g + "}", "pci.ecam_buses"},
      {R"({"pci": {"ecamBuses": 257}, )" + g + "}", "pci.ecam_buses"},
      {R"({"pci": {"barPolicy": 7}, )" + g + "}", "pci.bar_policy"},
      {R"({"pci": {"barCostNsPerGib": "1000000001"}, )" + g + "}", "pci.bar_cost_ns_per_gib"},
      {R"({"pci": {"devices": [{"slot": 1, "model": 1}]}, )" + g + "}", "pci.devices[0].name"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 0, "model": 1}]}, )" + g + "}",
       "pci.devices[0].slot"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 32, "model": 1}]}, )" + g + "}",
       "pci.devices[0].slot"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 1}]}, )" + g + "}", "pci.devices[0].model"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 1, "model": 1, "bar1Gib": "3"}]}, )" + g + "}",
       "pci.devices[0].bar1_gib"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 1, "model": 1},
                               {"name": "a", "slot": 2, "model": 1}]}, )" +
           g + "}",
       "pci.devices[1].name"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 1, "model": 1},
                               {"name": "b", "slot": 1, "model": 1}]}, )" +
           g + "}",
       "pci.devices[1].slot"},
      {R"({"pci": {"vfioDevices": [{"hostAddress": "00:04"}]}, )" + g + "}",
       "pci.vfio_devices[0].host_address"},
      {R"({"pci": {"vfioDevices": [{"hostAddress": "00:04.0", "slot": 32}]}, )" + g + "}",
       "pci.vfio_devices[0].slot"},
      {R"({"pci": {"vfioDevices": [{"hostAddress": "00:04.0"}, {"hostAddress": "0000:00:04.0"}]},
          )" +
           g + "}",
       "pci.vfio_devices[1].host_address"},
      {R"({"pci": {"devices": [{"name": "a", "slot": 3, "model": 1}],
                   "vfioDevices": [{"hostAddress": "00:04.0", "slot": 3}]}, )" +
           g + "}",
       "pci.vfio_devices[0].slot"},
      {R"({"testGuest": {"imagePath": ""}})", "test_guest.image_path"},
      {R"({"linuxBoot": {"cmdline": "x"}})", "linux_boot.kernel_path"},
      {R"({})", "guest"},
      {R"({"consolePath": "", )" + g + "}", "console_path"},
  };
  for (const auto& [json, field] : cases) {
    EXPECT_NE(SpecError(json).find(field), std::string::npos) << json << " -> " << field;
  }
}

TEST(ConfigConvertTest, VfioDevicesGetTheirDefaultsAndRoundTrip) {
  auto spec = VmSpecFromConfig(Parse(R"({"pci": {"vfioDevices": [{"hostAddress": "03:00.0"},
      {"hostAddress": "0000:04:00.0", "slot": 7, "name": "nvme", "forwardMsi": false,
       "configFastPath": true, "mmapBars": false}]}, "testGuest": {"imagePath": "g"}})"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->pci.vfio.size(), 2u);
  const platform::VfioDeviceConfig& a = spec->pci.vfio[0];
  EXPECT_EQ(a.host_address, "0000:03:00.0");
  EXPECT_EQ(a.slot, 0);
  EXPECT_TRUE(a.forward_msi);
  EXPECT_FALSE(a.config_fast_path);
  EXPECT_TRUE(a.mmap_bars);
  const platform::VfioDeviceConfig& b = spec->pci.vfio[1];
  EXPECT_EQ(b.slot, 7);
  EXPECT_EQ(b.name, "nvme");
  EXPECT_FALSE(b.forward_msi);
  EXPECT_TRUE(b.config_fast_path);
  EXPECT_FALSE(b.mmap_bars);
  const v1::VmConfig back = ConfigFromSpec(*spec);
  ASSERT_EQ(back.pci().vfio_devices_size(), 2);
  EXPECT_EQ(back.pci().vfio_devices(1).host_address(), "0000:04:00.0");
  EXPECT_FALSE(back.pci().vfio_devices(1).mmap_bars());
}

TEST(ConfigConvertTest, TestGuestsGetNoMoreVcpusThanTheirStacksFit) {
  EXPECT_EQ(platform::Machine::kMaxTestGuestVcpus, 30);  // (0x80000 - 0x7000) / 0x4000
  EXPECT_EQ(SpecError(R"({"machine": {"vcpus": 31}, "testGuest": {"imagePath": "g"}})"),
            "machine.vcpus: 31, but a test guest's stacks (guest ABI) fit 30 vCPUs");
  EXPECT_TRUE(
      VmSpecFromConfig(Parse(R"({"machine": {"vcpus": 30}, "testGuest": {"imagePath": "g"}})"))
          .ok());
  EXPECT_TRUE(
      VmSpecFromConfig(Parse(R"({"machine": {"vcpus": 64}, "linuxBoot": {"kernelPath": "k"}})"))
          .ok());
}

TEST(ConfigConvertTest, UnknownJsonFieldsAreRejected) {
  auto c = ParseVmConfigJson(R"({"machine": {"vcpu": 2}})");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("vcpu"), absl::string_view::npos);
}

TEST(ConfigConvertTest, OverlayLetsSetFieldsWinAndKeepsTheRest) {
  v1::VmConfig base = Parse(R"({"machine": {"ramMib": "128", "vcpus": 2},
      "pci": {"pioEnabled": false, "devices": [{"name": "a", "slot": 1, "model": 1}]},
      "testGuest": {"imagePath": "file.bin", "arg": "3"}})");
  v1::VmConfig flags = Parse(R"({"machine": {"vcpus": 4}, "pci": {"pioEnabled": true},
      "testGuest": {"arg": "0"}})");
  OverlayVmConfig(flags, &base);
  EXPECT_EQ(base.machine().ram_mib(), 128u);
  EXPECT_EQ(base.machine().vcpus(), 4u);
  EXPECT_TRUE(base.pci().pio_enabled());  // an explicit false -> true override
  EXPECT_EQ(base.pci().devices_size(), 1);
  EXPECT_EQ(base.test_guest().image_path(), "file.bin");
  EXPECT_EQ(base.test_guest().arg(), 0u);  // an explicit 0 wins too
}

TEST(ConfigConvertTest, OverlayReplacesDevicesAndAGuestOfAnotherKind) {
  v1::VmConfig base = Parse(R"({"pci": {"devices": [{"name": "a", "slot": 1, "model": 1},
      {"name": "b", "slot": 2, "model": 1}]}, "testGuest": {"imagePath": "file.bin"}})");
  v1::VmConfig flags = Parse(R"({"pci": {"devices": [{"name": "c", "slot": 5, "model": 1}]},
      "linuxBoot": {"kernelPath": "k"}})");
  OverlayVmConfig(flags, &base);
  ASSERT_EQ(base.pci().devices_size(), 1);
  EXPECT_EQ(base.pci().devices(0).name(), "c");
  EXPECT_FALSE(base.has_test_guest());
  EXPECT_EQ(base.linux_boot().kernel_path(), "k");
}

TEST(ConfigConvertTest, ConfigFromSpecRoundTrips) {
  auto spec = VmSpecFromConfig(Parse(R"({"machine": {"ramMib": "96", "vcpus": 3},
      "pci": {"ecamFastPath": true, "barPolicy": "BAR_POLICY_DEFERRED",
              "devices": [{"name": "g", "slot": 2, "model": 1, "bar1Gib": "32"}]},
      "testGuest": {"imagePath": "x.bin", "arg": "12"}})"));
  ASSERT_TRUE(spec.ok());
  const v1::VmConfig c = ConfigFromSpec(*spec);
  auto again = VmSpecFromConfig(c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->machine.ram_bytes, spec->machine.ram_bytes);
  EXPECT_EQ(again->machine.vcpus, 3);
  EXPECT_TRUE(again->pci.ecam_fast_path);
  EXPECT_EQ(again->pci.bar_policy, pci::MapPolicy::kDeferred);
  EXPECT_EQ(again->pci.devices[0].bars[1].size, 32ull << 30);
  EXPECT_EQ(std::get<TestGuestConfig>(again->guest).arg, 12u);
  EXPECT_TRUE(c.pci().has_pio_enabled());  // defaults written out
}

}  // namespace
}  // namespace pcivmm::api
