#include "pci/vfio/vfio_device.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pcivmm::vfio {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(NormalizePciAddressTest, AcceptsBothFormsAndRejectsTheRest) {
  EXPECT_EQ(*NormalizePciAddress("0000:00:04.0"), "0000:00:04.0");
  EXPECT_EQ(*NormalizePciAddress("0A:1F.7"), "0000:0a:1f.7");
  for (const char* bad : {"", "00:04", "0000:00:04.8", "0000:00:20.0", "0000-00:04.0", "zz:04.0"}) {
    EXPECT_EQ(NormalizePciAddress(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// A fake /sys with one device, built per test.
class FakeSysfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("pcivmm-vfio-test-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    dev_ = root_ / "sys/bus/pci/devices/0000:00:04.0";
    fs::create_directories(dev_);
    std::ofstream(dev_ / "vendor") << "0x1af4\n";
    std::ofstream(dev_ / "device") << "0x1110\n";
    fs::create_directories(root_ / "sys/bus/pci/drivers/vfio-pci");
    fs::create_directories(root_ / "sys/bus/pci/drivers/e1000e");
    fs::create_directories(root_ / "sys/kernel/iommu_groups/7/devices");
    fs::create_directories(root_ / "dev/vfio");
    paths_ = {(root_ / "sys").string(), (root_ / "dev/vfio").string()};
  }
  void TearDown() override { fs::remove_all(root_); }
  void Bind(const std::string& driver) {
    fs::create_directory_symlink(root_ / "sys/bus/pci/drivers" / driver, dev_ / "driver");
  }
  void Group(int n) {
    fs::create_directory_symlink(root_ / "sys/kernel/iommu_groups" / std::to_string(n),
                                 dev_ / "iommu_group");
  }
  fs::path root_;
  fs::path dev_;
  VfioPaths paths_;
};

TEST_F(FakeSysfsTest, MissingDeviceIsNotFound) {
  auto st = CheckVfioBinding(paths_, "0000:00:05.0").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(st.message(), HasSubstr("no such PCI device"));
}

TEST_F(FakeSysfsTest, UnboundDeviceSaysHowToBindIt) {
  auto st = CheckVfioBinding(paths_, "0000:00:04.0").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("not bound to any driver"));
  EXPECT_THAT(st.message(), HasSubstr("0x1af4:0x1110"));
  EXPECT_THAT(st.message(), HasSubstr("driver_override"));
}

TEST_F(FakeSysfsTest, DeviceBoundToAnotherDriverNamesIt) {
  Bind("e1000e");
  auto st = CheckVfioBinding(paths_, "0000:00:04.0").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("bound to e1000e, not vfio-pci"));
}

TEST_F(FakeSysfsTest, NoIommuGroupMeansNoIommu) {
  Bind("vfio-pci");
  auto st = CheckVfioBinding(paths_, "0000:00:04.0").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("no IOMMU group"));
}

TEST_F(FakeSysfsTest, BoundDeviceYieldsItsGroup) {
  Bind("vfio-pci");
  Group(7);
  EXPECT_EQ(*CheckVfioBinding(paths_, "0000:00:04.0"), 7);
}

TEST_F(FakeSysfsTest, GroupBlockersListsDevicesOnOtherDrivers) {
  const fs::path devices = root_ / "sys/kernel/iommu_groups/7/devices";
  fs::create_directories(devices / "0000:00:04.1");
  fs::create_directory_symlink(root_ / "sys/bus/pci/drivers/e1000e",
                               devices / "0000:00:04.1/driver");
  fs::create_directories(devices / "0000:00:04.2");
  fs::create_directory_symlink(root_ / "sys/bus/pci/drivers/vfio-pci",
                               devices / "0000:00:04.2/driver");
  EXPECT_EQ(GroupBlockers(paths_, 7), "0000:00:04.1 (driver e1000e)");
}

TEST_F(FakeSysfsTest, MissingContainerNodeSaysTheModuleIsNotLoaded) {
  auto st = VfioContainer::Open(paths_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("vfio module is not loaded"));
}

TEST_F(FakeSysfsTest, ContainerThatIsNotVfioIsRefused) {
  std::ofstream(root_ / "dev/vfio/vfio") << "not a device";
  auto st = VfioContainer::Open(paths_).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("VFIO API version"));
}

}  // namespace
}  // namespace pcivmm::vfio
