// Soak: a VM (with two GPU-like devices, their 128 GiB BAR slots and the ECAM fast path) is
// created, run and destroyed 200 times in one process; fds, threads and RSS come back to
// where they were: nothing a VM owns outlives it.
#include "gtest/gtest.h"
#include "tests/kvm/guest_vm.h"
#include "tests/kvm/process_census.h"

namespace pcivmm {
namespace {

platform::PciConfig TwoGpus() {
  platform::PciConfig c;
  c.devices = {pci::GpuLikeDevice("gpu0", 1), pci::GpuLikeDevice("gpu1", 2)};
  c.ecam_fast_path = true;
  return c;
}

void OneVm() {
  auto vm = testing::GuestVm::Create(TwoGpus());
  ASSERT_NE(vm, nullptr);
  const kvm::StopReason r = vm->Run("hello", 0);
  EXPECT_EQ(r.exit_code, 0) << r.detail;
}

TEST(SoakKvmTest, TwoHundredVmsLeaveNoFdThreadOrMemoryBehind) {
  OneVm();  // warm-up: first-use allocations (libraries, thread-local caches) are not leaks
  const testing::ProcessCensus before;
  for (int i = 0; i < 200 && !HasFailure(); ++i) OneVm();
  testing::ExpectBackToBaseline(before, 200, "VMs");
}

}  // namespace
}  // namespace pcivmm
