// Soak: a VM (with two GPU-like devices, their 128 GiB BAR slots and the ECAM fast path) is
// created, run and destroyed 200 times in one process; fds, threads and RSS come back to
// where they were: nothing a VM owns outlives it.
#include <dirent.h>
#include <malloc.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/kvm/guest_vm.h"
#include "vmm/base/proc_fields.h"

namespace pcivmm {
namespace {

int CountEntries(const char* dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n - (std::string(dir) == "/proc/self/fd" ? 1 : 0);  // the DIR's own fd
}

// VmRSS after giving freed heap back to the kernel (malloc_trim): what remains is held.
uint64_t RssKib() {
  ::malloc_trim(0);
  return *base::ReadProcKib("/proc/self/status", "VmRSS:") >> 10;
}

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
  const int fds = CountEntries("/proc/self/fd");
  const int threads = CountEntries("/proc/self/task");
  const uint64_t rss = RssKib();
  for (int i = 0; i < 200 && !HasFailure(); ++i) OneVm();
  EXPECT_EQ(CountEntries("/proc/self/fd"), fds);
  EXPECT_EQ(CountEntries("/proc/self/task"), threads);
  const uint64_t grown = RssKib() - std::min(rss, RssKib());
  EXPECT_LT(grown, 2048u) << "RSS grew by " << grown << " KiB over 200 VMs";
  std::printf("SOAK: 200 VMs; fds %d, threads %d, RSS %llu KiB -> %llu KiB\n", fds, threads,
              static_cast<unsigned long long>(rss), static_cast<unsigned long long>(RssKib()));
}

}  // namespace
}  // namespace pcivmm
