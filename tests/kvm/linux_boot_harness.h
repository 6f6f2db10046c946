// Booting the Linux guest (guest-images/linux/) in-process for the KVM tests: a LinuxVm from a
// few options, run under the boot watchdog so that a hang fails the test with each vCPU's
// state instead of the lab's time limit.
#ifndef PCIVMM_TESTS_KVM_LINUX_BOOT_HARNESS_H_
#define PCIVMM_TESTS_KVM_LINUX_BOOT_HARNESS_H_

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/linux_init_lines.h"
#include "vmm/platform/boot_watchdog.h"
#include "vmm/platform/linux_vm.h"

namespace pcivmm {

constexpr uint64_t kGpuBar1 = 1ull << 30;  // 1 GiB: big enough to be a 64-bit window BAR
constexpr absl::Duration kBootTimeout = absl::Seconds(120);  // generous: TCG in the lab

struct Options {
  int vcpus = 1;
  int gpus = 1;  // GPU-like devices at bus 0 slots 1..gpus, unless `devices` is set
  bool pio = true;
  bool fast_path = false;
  std::string cmdline_extra = "";
  std::vector<pci::DeviceSpec> devices = {};  // ports and devices, parents first
};

inline std::unique_ptr<platform::LinuxVm> MakeVm(const Options& o) {
  platform::LinuxVmConfig c;
  c.machine.ram_bytes = 256ull << 20;
  c.machine.vcpus = o.vcpus;
  c.machine.console_echo = nullptr;
  c.pci.pio_enabled = o.pio;
  c.pci.ecam_fast_path = o.fast_path;
  c.pci.bar_policy = pci::MapPolicy::kDeferred;
  for (int i = 0; i < o.gpus && o.devices.empty(); ++i) {
    c.pci.devices.push_back(pci::GpuLikeDevice(absl::StrFormat("gpu%d", i), i + 1, kGpuBar1));
  }
  for (const pci::DeviceSpec& d : o.devices) {
    c.pci.devices.push_back(d);
    if (d.port != pci::PortKind::kNone) ++c.pci.bus_count;  // a secondary bus per port
  }
  if (std::getenv("PCIVMM_TEST_CONSOLE") != nullptr) {  // debugging: echo the guest console
    c.devices.console = [](std::string_view s) { std::fwrite(s.data(), 1, s.size(), stderr); };
  }
  c.boot.kernel_path = PCIVMM_LINUX_GUEST_DIR "/vmlinuz";
  c.boot.initrd_path = PCIVMM_LINUX_GUEST_DIR "/initramfs.cpio.gz";
  const char* debug_cmdline = std::getenv("PCIVMM_TEST_CMDLINE");  // e.g. "loglevel=8"
  c.boot.cmdline = absl::StrFormat("%s %s %s", platform::kDefaultLinuxCmdline, o.cmdline_extra,
                                   debug_cmdline != nullptr ? debug_cmdline : "");
  auto vm = platform::LinuxVm::Create(std::move(c));
  EXPECT_TRUE(vm.ok()) << vm.status();
  return vm.ok() ? std::move(*vm) : nullptr;
}

// pcivmm --boot-timeout for the in-process VM: a guest whose init has not written the boot
// marker in time is stopped with the watchdog's report (console line, each vCPU's RIP and
// last exit) as the stop's detail.
inline void StopWithBootReport(platform::LinuxVm& vm, absl::Duration timeout) {
  if (vm.boot_marker().boot_ns().has_value()) return;
  const platform::BootTimeoutReport report = platform::CollectBootTimeoutReport(
      vm.machine(), timeout, vm.devices().uart().output_tail(), absl::Seconds(2));
  if (vm.boot_marker().boot_ns().has_value()) {  // it came while the vCPUs parked
    vm.machine().control().Resume();
    return;
  }
  vm.machine().RequestStop(
      {kvm::kExitStatusBootTimeout, platform::FormatBootTimeoutReport(report, "")});
}

// Runs the VM; a guest that has not booted after `boot_timeout` (StopWithBootReport), or is
// still running after kWatchdog, is stopped, so a hang fails the test (with the vCPUs'
// instruction pointers) instead of the lab's time limit.
inline kvm::StopReason RunWithWatchdog(platform::LinuxVm& vm,
                                       absl::Duration boot_timeout = kBootTimeout) {
  constexpr absl::Duration kWatchdog = absl::Seconds(150);
  platform::BootWatchdog boot(boot_timeout,
                              [&vm, boot_timeout] { StopWithBootReport(vm, boot_timeout); });
  absl::Notification done;
  std::thread watchdog([&] {
    if (done.WaitForNotificationWithTimeout(kWatchdog)) return;
    vm.machine().RequestStop({kvm::kExitStatusVmmError, "test watchdog: guest still running"});
  });
  boot.Arm();
  kvm::StopReason r = vm.Run();
  boot.Stop();
  done.Notify();
  watchdog.join();
  kvm_regs regs{};
  if (::ioctl(vm.machine().vcpu(0).fd(), KVM_GET_REGS, &regs) == 0) {
    absl::StrAppendFormat(&r.detail, " [vcpu0 rip %#x]", regs.rip);
  }
  return r;
}

inline kvm::StopReason Boot(platform::LinuxVm& vm) {
  kvm::StopReason r = RunWithWatchdog(vm);
  EXPECT_EQ(r.exit_code, 0) << r.detail << "\nconsole:\n" << vm.devices().uart().output_tail();
  return r;
}

// Boots `vm` (made with "pcivmm.bar=BDF,1") with a pattern seeded in `gpu`'s BAR1: the
// guest's init must read the pattern and write 0x600DF00D at +16, seen by the host.
inline void ExpectGuestReadsAndWritesBar1(platform::LinuxVm& vm, const pci::PciFunction& gpu,
                                          const std::string& bdf) {
  auto backing = vm.pci().mapper().Backing(gpu, 1);
  ASSERT_TRUE(backing.ok()) << backing.status();
  const uint32_t pattern[4] = {0x11223344, 0xCAFEBABE, 0x0BADC0DE, 0x5A5AA5A5};
  std::memcpy(backing->data(), pattern, sizeof(pattern));
  Boot(vm);
  EXPECT_THAT(InitLines(vm, "barread"),
              ::testing::ElementsAre(bdf + " 1 0x11223344 0xCAFEBABE 0x0BADC0DE 0x5A5AA5A5"));
  EXPECT_THAT(InitLines(vm, "barwrite"), ::testing::ElementsAre(bdf + " 1 0x600DF00D"));
  uint32_t written = 0;
  std::memcpy(&written, backing->data() + 16, 4);
  EXPECT_EQ(written, 0x600DF00Du);
}

}  // namespace pcivmm

#endif  // PCIVMM_TESTS_KVM_LINUX_BOOT_HARNESS_H_
