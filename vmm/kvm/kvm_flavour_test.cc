#include "vmm/kvm/kvm_flavour.h"

#include <linux/kvm.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "vmm/base/temp_dir.h"

namespace pcivmm::kvm {
namespace {

KvmHostFacts Facts(std::set<std::string> modules, bool vmx, bool svm) {
  KvmHostFacts f;
  f.device_present = true;
  f.api_version = KVM_API_VERSION;
  f.vendor_modules = std::move(modules);
  f.cpu_vmx = vmx;
  f.cpu_svm = svm;
  return f;
}

TEST(KvmFlavourTest, NoDeviceIsAbsent) {
  KvmHostFacts f = Facts({"kvm_intel"}, true, false);
  f.device_present = false;
  const KvmClass c = ClassifyKvm(f);
  EXPECT_EQ(c.flavour, KvmFlavour::kAbsent);
  EXPECT_EQ(c.reason, "/dev/kvm does not exist");
  EXPECT_FALSE(c.hardware());
}

TEST(KvmFlavourTest, VendorModuleAndCpuFlagMakeHardwareKvm) {
  const KvmClass intel = ClassifyKvm(Facts({"kvm_intel"}, true, false));
  EXPECT_EQ(intel.flavour, KvmFlavour::kIntelVmx);
  EXPECT_EQ(intel.reason, "kvm_intel is loaded and the CPU has vmx");
  EXPECT_TRUE(intel.hardware());
  const KvmClass amd = ClassifyKvm(Facts({"kvm_amd"}, false, true));
  EXPECT_EQ(amd.flavour, KvmFlavour::kAmdSvm);
  EXPECT_EQ(amd.reason, "kvm_amd is loaded and the CPU has svm");
  EXPECT_TRUE(amd.hardware());
}

TEST(KvmFlavourTest, BuiltInKvmIsKnownByTheCpuFlag) {
  const KvmClass c = ClassifyKvm(Facts({}, false, true));
  EXPECT_EQ(c.flavour, KvmFlavour::kAmdSvm);
  EXPECT_NE(c.reason.find("built in"), std::string::npos) << c.reason;
}

TEST(KvmFlavourTest, PvmModuleWinsEvenWhereTheCpuHasVmx) {
  const KvmClass plain = ClassifyKvm(Facts({"kvm_pvm"}, false, false));
  EXPECT_EQ(plain.flavour, KvmFlavour::kPvm);
  EXPECT_EQ(plain.reason,
            "kvm_pvm is loaded and the CPU has neither vmx nor svm: PVM runs only guest kernels "
            "built for it");
  EXPECT_FALSE(plain.hardware());
  EXPECT_EQ(ClassifyKvm(Facts({"kvm_pvm"}, true, false)).flavour, KvmFlavour::kPvm);
}

TEST(KvmFlavourTest, NothingToGoByIsUnknown) {
  const KvmClass c = ClassifyKvm(Facts({}, false, false));
  EXPECT_EQ(c.flavour, KvmFlavour::kUnknown);
  EXPECT_EQ(c.reason,
            "/dev/kvm exists but no kvm_intel, kvm_amd or kvm_pvm module and the CPU has neither "
            "vmx nor svm");
  // A vendor module without its CPU flag is inconsistent: unknown too.
  EXPECT_EQ(ClassifyKvm(Facts({"kvm_intel"}, false, false)).flavour, KvmFlavour::kUnknown);
}

TEST(KvmFlavourTest, AnUnopenableOrWrongVersionDeviceIsUnknown) {
  KvmHostFacts f = Facts({"kvm_intel"}, true, false);
  f.open_error = "Permission denied";
  EXPECT_EQ(ClassifyKvm(f).flavour, KvmFlavour::kUnknown);
  EXPECT_EQ(ClassifyKvm(f).reason, "/dev/kvm cannot be opened: Permission denied");
  f.open_error.clear();
  f.api_version = 11;
  EXPECT_EQ(ClassifyKvm(f).reason, "/dev/kvm reports KVM API version 11, not 12");
}

class FakeHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(root_.path().empty());
    const std::string& root = root_.path();
    paths_ = {root + "/dev/kvm", root + "/sys/module", root + "/cpuinfo"};
    std::filesystem::create_directories(paths_.sys_module);
  }
  void Write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
  }
  base::TempDir root_{"kvm_flavour_test"};
  KvmHostPaths paths_;
};

TEST_F(FakeHostTest, ReadsModulesAndTheFirstFlagsLine) {
  std::filesystem::create_directories(paths_.sys_module + "/kvm_pvm/parameters");
  std::filesystem::create_directories(paths_.sys_module + "/kvm");
  Write(paths_.cpuinfo,
        "processor\t: 0\nflags\t\t: fpu vme hypervisor lm\nbugs\t: \n"
        "processor\t: 1\nflags\t\t: fpu svm\n");
  const KvmHostFacts f = ReadKvmHostFacts(paths_);
  EXPECT_FALSE(f.device_present);
  EXPECT_EQ(f.vendor_modules, std::set<std::string>{"kvm_pvm"});
  EXPECT_FALSE(f.cpu_vmx);
  EXPECT_FALSE(f.cpu_svm);  // only the first CPU's line counts
  EXPECT_EQ(ClassifyKvm(f).flavour, KvmFlavour::kAbsent);
}

TEST_F(FakeHostTest, ADeviceThatIsNotKvmIsUnknown) {
  Write(paths_.device, "");  // a plain file: opens, but KVM_GET_API_VERSION fails
  Write(paths_.cpuinfo, "flags\t: vmx\n");
  std::filesystem::create_directories(paths_.sys_module + "/kvm_intel");
  const KvmHostFacts f = ReadKvmHostFacts(paths_);
  EXPECT_TRUE(f.device_present);
  EXPECT_TRUE(f.open_error.empty());
  EXPECT_EQ(f.api_version, -1);
  EXPECT_TRUE(f.cpu_vmx);
  EXPECT_EQ(ClassifyKvm(f).flavour, KvmFlavour::kUnknown);
}

TEST(KvmFlavourTest, NamesAndJson) {
  EXPECT_EQ(FlavourName(KvmFlavour::kPvm), "pvm");
  EXPECT_EQ(FlavourName(KvmFlavour::kIntelVmx), "vmx");
  EXPECT_EQ(FlavourTitle(KvmFlavour::kAmdSvm), "hardware KVM (AMD SVM)");
  const KvmClass c{KvmFlavour::kPvm, R"(a "quoted" \ reason)"};
  EXPECT_EQ(KvmJson(c, "lab"),
            R"({"flavour": "pvm", "where": "lab", "reason": "a \"quoted\" \\ reason"})");
  EXPECT_EQ(KvmJson({KvmFlavour::kAmdSvm, "r"}, "lab", "pvm\""),
            R"({"flavour": "svm", "where": "lab", "reason": "r", "host_flavour": "pvm"})");
}

TEST(KvmFlavourTest, WhereFollowsTheLabsEnvironment) {
  const char* was = std::getenv("PCIVMM_LAB");
  const std::string saved = was != nullptr ? was : "";
  ::unsetenv("PCIVMM_LAB");
  EXPECT_EQ(KvmWhere(), "direct");
  ::setenv("PCIVMM_LAB", "1", 1);
  EXPECT_EQ(KvmWhere(), "lab");
  if (was != nullptr) {
    ::setenv("PCIVMM_LAB", saved.c_str(), 1);
  } else {
    ::unsetenv("PCIVMM_LAB");
  }
}

}  // namespace
}  // namespace pcivmm::kvm
