// Direct Linux boot of Debian's cloud kernel with the project's busybox initramfs
// (guest-images/linux/): the guest's /init prints "PCIVMM ..." lines (see its header).
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/linux_boot_harness.h"
#include "tests/kvm/linux_init_lines.h"
#include "tests/kvm/process_census.h"
#include "vmm/base/platform_layout.h"
#include "vmm/kvm/exit_dispatcher.h"
#include "vmm/platform/boot_watchdog.h"
#include "vmm/platform/linux_vm.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm {
namespace {

using ::testing::HasSubstr;

uint64_t PioExits(const platform::LinuxVm& vm, uint16_t first, uint16_t count) {
  uint64_t n = 0;
  auto& stats = const_cast<platform::LinuxVm&>(vm).machine().stats();
  for (uint16_t p = first; p < first + count; ++p) {
    n += stats.pio(p, mmio::Direction::kRead) + stats.pio(p, mmio::Direction::kWrite);
  }
  return n;
}

// Every phase of an in-process boot (no API) was reached, in the order the boot passes them;
// the config accesses fall between the first KVM_RUN and the marker; the guest's own uptime
// at the marker is shorter than the time its vCPU ran (its clock starts after its first
// instruction).
void ExpectAProfileInBootOrder(const base::BootProfile& p) {
  using base::BootPhase;
  int64_t last = 0;
  for (BootPhase phase : {BootPhase::kVmCreated, BootPhase::kRamMapped, BootPhase::kVcpusCreated,
                          BootPhase::kDevicesAttached, BootPhase::kImagesLoaded,
                          BootPhase::kFirmwareBuilt, BootPhase::kFirstKvmRun,
                          BootPhase::kFirstConsoleByte, BootPhase::kBootMarker, BootPhase::kExit}) {
    ASSERT_TRUE(p.ns(phase).has_value()) << base::BootPhaseName(phase);
    EXPECT_GE(*p.ns(phase), last) << base::BootPhaseName(phase);
    last = *p.ns(phase);
  }
  EXPECT_FALSE(p.ns(BootPhase::kApiReady).has_value());
  ASSERT_TRUE(p.ns(BootPhase::kFirstConfigAccess).has_value());
  EXPECT_GT(*p.ns(BootPhase::kFirstConfigAccess), *p.ns(BootPhase::kFirstKvmRun));
  EXPECT_GE(*p.ns(BootPhase::kLastConfigAccess), *p.ns(BootPhase::kFirstConfigAccess));
  EXPECT_LT(*p.ns(BootPhase::kLastConfigAccess), *p.ns(BootPhase::kBootMarker));
  ASSERT_TRUE(p.guest_uptime_ns().has_value());
  EXPECT_GT(*p.guest_uptime_ns(), 0);
  EXPECT_LT(*p.guest_uptime_ns(), *p.ns(BootPhase::kBootMarker) - *p.ns(BootPhase::kFirstKvmRun));
}

TEST(LinuxBootKvmTest, BootsToInitAndPowersOffWithOneVcpu) {
  auto vm = MakeVm({});
  ASSERT_NE(vm, nullptr);
  kvm::StopReason r = Boot(*vm);
  EXPECT_THAT(r.detail, HasSubstr("powered off"));
  EXPECT_THAT(InitLines(*vm, "cpus"), ::testing::ElementsAre("0"));
  EXPECT_THAT(InitLines(*vm, "error"), ::testing::IsEmpty());
  EXPECT_THAT(vm->devices().uart().output_tail(), HasSubstr("PCIVMM done"));
  ASSERT_TRUE(vm->boot_marker().boot_ns().has_value());
  EXPECT_EQ(vm->boot_marker().marks(), 1u);
  ExpectAProfileInBootOrder(vm->machine().profile());
}

TEST(LinuxBootKvmTest, StartsTheSecondVcpuThroughTheLapic) {
  auto vm = MakeVm({.vcpus = 2});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  EXPECT_THAT(InitLines(*vm, "cpus"), ::testing::ElementsAre("0-1"));
}

TEST(LinuxBootKvmTest, GuestSeesExactlyTheConfiguredDevicesAtFirmwareBars) {
  auto vm = MakeVm({.gpus = 2});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  std::vector<std::string> want_pci, want_bars;
  for (const pci::PciFunction* f : vm->pci().bus().functions()) {
    const pci::DeviceSpec& s = f->spec();
    const std::string bdf = absl::StrFormat("0000:00:%02x.%d", s.slot, s.function);
    want_pci.push_back(absl::StrFormat("%s vendor=0x%04x device=0x%04x class=0x%06x", bdf,
                                       s.vendor_id, s.device_id, s.class_code));
    for (const pci::BarSpec& b : s.bars) {
      want_bars.push_back(absl::StrFormat("%s %d start=0x%016x end=0x%016x", bdf, b.index,
                                          f->BarAddress(b), f->BarAddress(b) + b.size - 1));
    }
  }
  EXPECT_THAT(InitLines(*vm, "pci"), ::testing::UnorderedElementsAreArray(want_pci));
  std::vector<std::string> got_bars;
  for (const std::string& l : InitLines(*vm, "bar")) {
    if (l.find(" 6 start=") != std::string::npos) continue;  // the ROM: checked elsewhere
    got_bars.push_back(l.substr(0, l.find(" flags=")));
  }
  EXPECT_THAT(got_bars, ::testing::UnorderedElementsAreArray(want_bars));
}

TEST(LinuxBootKvmTest, LinuxAcceptsMmconfigAndUsesTypeOneBelow256WithPioOn) {
  auto vm = MakeVm({});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  const std::vector<std::string> dmesg = InitLines(*vm, "dmesg");
  EXPECT_THAT(dmesg, ::testing::Contains(HasSubstr(
                         "MMCONFIG for domain 0000 [bus 00-00] at [mem 0xe0000000-0xe00fffff]")));
  EXPECT_THAT(dmesg, ::testing::Contains(HasSubstr("Using configuration type 1 for base access")));
  EXPECT_THAT(
      dmesg,
      ::testing::Not(::testing::Contains(HasSubstr("Using configuration type 1 for extended"))));
  // Type 1 for registers below 256: every ECAM access Linux made is to extended space.
  const pci::ConfigStats& st = vm->pci().bus().stats();
  uint64_t ecam_low = 0;
  for (const pci::PciFunction* f : vm->pci().bus().functions()) {
    const pci::Bdf bdf{0, static_cast<uint8_t>(f->spec().slot),
                       static_cast<uint8_t>(f->spec().function)};
    for (uint16_t reg = 0; reg < 256; ++reg) {
      ecam_low += st.register_accesses(pci::ConfigPath::kEcam, mmio::Direction::kRead, bdf, reg) +
                  st.register_accesses(pci::ConfigPath::kEcam, mmio::Direction::kWrite, bdf, reg);
    }
  }
  EXPECT_EQ(ecam_low, 0u);
  EXPECT_GT(st.accesses(pci::ConfigPath::kEcam, mmio::Direction::kRead),
            0u);  // PCIe extended space
  EXPECT_GT(PioExits(*vm, 0xCFC, 4), 0u);
}

// Snapshots the 0xCFC..0xCFF exit count when Linux makes its first ECAM access: what
// Linux does on those ports before then is its probe (early quirks, type 1 and 2 checks).
class FirstEcamAccess : public pci::ConfigTracer {
 public:
  explicit FirstEcamAccess(const platform::LinuxVm* vm) : vm_(vm) {}
  void OnConfigAccess(const pci::ConfigAccess& access) override {
    if (access.path != pci::ConfigPath::kEcam || seen_.exchange(true)) return;
    data_exits_before_.store(PioExits(*vm_, 0xCFC, 4));
  }
  bool seen() const { return seen_.load(); }
  uint64_t data_exits_before() const { return data_exits_before_.load(); }

 private:
  const platform::LinuxVm* const vm_;
  std::atomic<bool> seen_{false};
  std::atomic<uint64_t> data_exits_before_{0};
};

TEST(LinuxBootKvmTest, WithPioOffLinuxUsesMmconfigForEverything) {
  auto vm = MakeVm({.pio = false});
  ASSERT_NE(vm, nullptr);
  FirstEcamAccess first(vm.get());
  vm->pci().bus().SetTracer(&first);
  Boot(*vm);
  vm->pci().bus().SetTracer(nullptr);
  ASSERT_TRUE(first.seen());
  // No 0xCFC exit after the probe, and nothing on the PIO path ever reached a function.
  EXPECT_EQ(PioExits(*vm, 0xCFC, 4), first.data_exits_before());
  EXPECT_EQ(vm->pci().bus().stats().accesses(pci::ConfigPath::kPio, mmio::Direction::kRead), 0u);
  EXPECT_EQ(vm->pci().bus().stats().accesses(pci::ConfigPath::kPio, mmio::Direction::kWrite), 0u);
  EXPECT_GT(vm->pci().bus().stats().accesses(pci::ConfigPath::kEcam, mmio::Direction::kRead), 0u);
  EXPECT_THAT(InitLines(*vm, "dmesg"),
              ::testing::Not(::testing::Contains(HasSubstr("Using configuration type 1"))));
  EXPECT_EQ(InitLines(*vm, "pci").size(), vm->pci().bus().functions().size());
}

TEST(LinuxBootKvmTest, FastPathBootReadsConfigWithoutExits) {
  auto vm = MakeVm({.pio = false, .fast_path = true});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  const int ecam = vm->pci().ecam_region();
  EXPECT_EQ(vm->machine().stats().mmio(ecam, mmio::Direction::kRead), 0u);
  EXPECT_GT(vm->machine().stats().mmio(ecam, mmio::Direction::kWrite), 0u);  // command, BAR sizing
  EXPECT_EQ(InitLines(*vm, "pci").size(), vm->pci().bus().functions().size());
}

// The Linux storm (pcivmm.storm=BDF,OFFSET,COUNT; guest-images/linux/cfg_storm.cc): each dword
// pread of the sysfs config file is one config access, whose exits by path are exact: 2 through
// PIO (below 0x100 with PIO on), 1 through the trapping ECAM window, 0 through the fast path.
// Measured as the difference between a boot of 1 + kReads reads and a boot of 1 read.
struct StormRun {
  uint64_t config_exits = 0;
  std::string value;  // the last dword read, as the guest printed it
};

StormRun Storm(Options o, int offset, int count) {
  o.cmdline_extra = absl::StrFormat("pcivmm.storm=0000:00:01.0,%d,%d", offset, count);
  auto vm = MakeVm(o);
  if (vm == nullptr) return {};
  Boot(*vm);
  const std::vector<std::string> lines = InitLines(*vm, "storm");
  // sysfs, the tmpfs floor, sysfs at the config file's end (0 bytes, the device not reached)
  EXPECT_EQ(lines.size(), 3u) << vm->devices().uart().output_tail();
  EXPECT_THAT(InitLines(*vm, "error"), ::testing::IsEmpty());
  if (lines.size() != 3) return {};
  const std::string config = "/sys/bus/pci/devices/0000:00:01.0/config";
  EXPECT_THAT(lines[0], ::testing::StartsWith(absl::StrFormat("%s %d %d ", config, offset, count)));
  EXPECT_THAT(lines[1], ::testing::StartsWith(absl::StrFormat("/tmp/floor %d %d ", offset, count)));
  EXPECT_THAT(lines[2], ::testing::StartsWith(absl::StrFormat("%s 4096 %d ", config, count)));
  return {platform::ConfigExitCount(vm->machine().stats(), vm->pci()),
          std::string(lines[0].substr(lines[0].rfind(' ') + 1))};
}

TEST(LinuxBootKvmTest, StormReadsCostTwoExitsByPioOneByTrappingEcamNoneByTheFastPath) {
  constexpr int kReads = 200;
  struct Case {
    Options o;
    int offset;
    uint64_t exits_per_read;
    const char* value;  // the GPU-like device's IDs at 0; its first extended capability at 0x100
  };
  const Case cases[] = {{{.pio = true}, 0, 2, "0x20b510de"},
                        {{.pio = true}, 0x100, 1, nullptr},
                        {{.pio = false}, 0, 1, "0x20b510de"},
                        {{.pio = false, .fast_path = true}, 0, 0, "0x20b510de"},
                        {{.pio = false, .fast_path = true}, 0x100, 0, nullptr}};
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrFormat("pio %d fast %d offset %#x", c.o.pio, c.o.fast_path, c.offset));
    const StormRun one = Storm(c.o, c.offset, 1);
    const StormRun many = Storm(c.o, c.offset, 1 + kReads);
    EXPECT_EQ(many.config_exits - one.config_exits, c.exits_per_read * kReads);
    EXPECT_EQ(many.value, one.value);
    if (c.value != nullptr) {
      EXPECT_EQ(many.value, c.value);
    } else {
      EXPECT_NE(many.value, "0x0");
      EXPECT_NE(many.value, "0xffffffff");
    }
  }
}

TEST(LinuxBootKvmTest, GuestReadsHostPatternThroughTheMappedBar) {
  auto vm = MakeVm({.cmdline_extra = "pcivmm.bar=0000:00:01.0,1"});
  ASSERT_NE(vm, nullptr);
  ExpectGuestReadsAndWritesBar1(*vm, *vm->pci().bus().functions().back(), "0000:00:01.0");
}

TEST(LinuxBootKvmTest, GuestRebootEndsTheVmCleanly) {
  auto vm = MakeVm({.cmdline_extra = "pcivmm.reboot=1"});
  ASSERT_NE(vm, nullptr);
  kvm::StopReason r = Boot(*vm);
  EXPECT_THAT(r.detail, HasSubstr("guest reset"));
}

TEST(LinuxBootKvmTest, KernelPanicEndsWithACrashStatusAndThePanicLine) {
  auto vm = MakeVm({.cmdline_extra = "pcivmm.panic=1"});
  ASSERT_NE(vm, nullptr);
  kvm::StopReason r = RunWithWatchdog(*vm);
  EXPECT_EQ(r.exit_code, kvm::kExitStatusGuestCrash) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("Kernel panic - not syncing"));
}

// No kernel reaches init in 1 ms: the boot watchdog parks the vCPUs, reads them and stops
// the VM with the boot-timeout status.
TEST(LinuxBootKvmTest, ABootTimeoutStopsTheKernelWithEachVcpusState) {
  auto vm = MakeVm({.vcpus = 2});
  ASSERT_NE(vm, nullptr);
  kvm::StopReason r = RunWithWatchdog(*vm, absl::Milliseconds(1));
  EXPECT_EQ(r.exit_code, kvm::kExitStatusBootTimeout) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("boot timeout after 1ms: no boot marker\n"));
  EXPECT_THAT(r.detail, HasSubstr("  last console line: "));
  EXPECT_THAT(r.detail, ::testing::ContainsRegex("  vcpu 0: rip 0x[0-9a-f]+, last exit "));
  EXPECT_THAT(r.detail, HasSubstr("  vcpu 1: "));
  EXPECT_FALSE(vm->boot_marker().boot_ns().has_value());
}

// Soak (issue "Hardening"): 50 Linux boots with a GPU-like device in one process; each VM's
// fds, threads and memory go with it.
TEST(LinuxBootKvmTest, FiftyBootsLeaveNoFdThreadOrMemoryBehind) {
  const auto boot_once = [] {
    auto vm = MakeVm({});
    ASSERT_NE(vm, nullptr);
    Boot(*vm);
  };
  boot_once();  // warm-up: first-use allocations (libraries, thread-local caches)
  const testing::ProcessCensus before;
  for (int i = 0; i < 50 && !HasFailure(); ++i) boot_once();
  testing::ExpectBackToBaseline(before, 50, "Linux boots");
}

}  // namespace
}  // namespace pcivmm
