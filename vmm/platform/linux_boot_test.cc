#include "vmm/platform/linux_boot.h"

#include <string>

#include "gtest/gtest.h"

namespace pcivmm::platform {
namespace {

TEST(RequireLinuxCapableKvmTest, PvmRefusesAnUnmodifiedKernelNamingPvmAndTheWayOut) {
  const kvm::KvmClass pvm{kvm::KvmFlavour::kPvm, "kvm_pvm is loaded"};
  const absl::Status st = RequireLinuxCapableKvm(pvm, {"/boot/vmlinuz", "", ""});
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  const std::string msg(st.message());
  EXPECT_NE(msg.find("PVM (kvm_pvm is loaded)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("hangs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("./dev lab --"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--pvm-guest-kernel"), std::string::npos) << msg;
}

TEST(RequireLinuxCapableKvmTest, APvmGuestKernelOrHardwareKvmGoesOn) {
  LinuxBootConfig pvm_kernel{"/boot/vmlinuz-pvm", "", ""};
  pvm_kernel.pvm_guest_kernel = true;
  EXPECT_TRUE(RequireLinuxCapableKvm({kvm::KvmFlavour::kPvm, "r"}, pvm_kernel).ok());
  EXPECT_TRUE(RequireLinuxCapableKvm({kvm::KvmFlavour::kAmdSvm, "r"}, {"/k", "", ""}).ok());
  EXPECT_TRUE(RequireLinuxCapableKvm({kvm::KvmFlavour::kIntelVmx, "r"}, {"/k", "", ""}).ok());
}

}  // namespace
}  // namespace pcivmm::platform
