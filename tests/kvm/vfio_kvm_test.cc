// VFIO tier: real devices passed through inside the lab (tests/lab/lab.sh --vfio-ivshmem FILE
// --vfio-edu; ./dev test runs it). The lab binds them to vfio-pci and names them in
// PCIVMM_VFIO_IVSHMEM / PCIVMM_VFIO_EDU; the host seeded the ivshmem file (its path in
// PCIVMM_VFIO_IVSHMEM_FILE) with kSeedMagic and PCIVMM_VFIO_SEED at offset 0, and checks
// what the guests wrote there after the run.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pci/pci_bus.h"
#include "tests/kvm/guest_vm.h"
#include "tests/kvm/linux_init_lines.h"
#include "tests/kvm/vfio_lab.h"
#include "vmm/boot/acpi_tables.h"
#include "vmm/platform/linux_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;
using ::testing::HasSubstr;
namespace lab = ::pcivmm::testing::vfio_lab;

constexpr int kIvshmemSlot = 3;
constexpr int kEduSlot = 4;
constexpr uint64_t kGuestPattern = 0x600DF00DC0FFEE00ull;
constexpr uint32_t kEduId = 0x010000ED;

enum Mode : uint64_t { kIds = 0, kRam = 1, kEdu = 2, kDecode = 3, kOwned = 4, kIrq = 6 };

uint64_t Arg(Mode mode, int slot, int bar, bool ecam = false, uint64_t high = 0) {
  return mode | uint64_t(slot) << 8 | uint64_t(bar) << 16 | (ecam ? 1ull << 24 : 0) | high << 32;
}

struct VmSetup {
  bool ivshmem = true;
  bool edu = false;
  pci::MapPolicy policy = pci::MapPolicy::kEager;
  bool ecam_fast_path = false;    // the platform's
  bool device_fast_path = false;  // the passthrough functions' (PassthroughOptions)
  bool mmap_bars = true;
  bool pc_platform = false;
};

class VfioKvmTest : public ::testing::Test {
 protected:
  // False (after a test failure) when the VM could not be made.
  bool Build(const VmSetup& s) {
    vm_.reset();  // closes the previous VM's VFIO groups first (a group opens once)
    platform::MachineConfig mc;
    mc.ram_bytes = 16 << 20;  // DMA mapping costs ~2-3 ms per MiB under the emulated IOMMU
    mc.pc_platform = s.pc_platform;
    platform::PciConfig pc;
    pc.bar_policy = s.policy;
    pc.ecam_fast_path = s.ecam_fast_path;
    if (s.ivshmem) pc.vfio.push_back(Device(lab::Ivshmem(), kIvshmemSlot, s));
    if (s.edu) pc.vfio.push_back(Device(lab::Edu(), kEduSlot, s));
    vm_ = GuestVm::CreateWith(mc, pc);
    return vm_ != nullptr;
  }
  static platform::VfioDeviceConfig Device(const std::string& bdf, int slot, const VmSetup& s) {
    platform::VfioDeviceConfig d;
    d.host_address = bdf;
    d.slot = slot;
    d.config_fast_path = s.device_fast_path;
    d.mmap_bars = s.mmap_bars;
    return d;
  }
  void Run(uint64_t arg) {
    kvm::StopReason r = vm_->Run("vfio_test", arg);
    ASSERT_EQ(r.exit_code, 0) << r.detail << "\n" << vm_->machine().console().output();
  }
  uint64_t Report(const std::string& key) { return vm_->Report(key); }
  // vfio_test mode 2: edu's identification register, and liveness (write x, read ~x) twice.
  void ExpectEduAnswered() {
    EXPECT_EQ(Report("edu_id"), kEduId);
    EXPECT_EQ(Report("edu_live1"), ~0x12345678u);
    EXPECT_EQ(Report("edu_live2"), ~0xA5A5A5A5u);
  }
  vfio::PassthroughFunction& Fn(int i) { return *vm_->pci().vfio().functions()[size_t(i)]; }
  pci::BarMapStats Stats(int i, int bar) {
    return vm_->pci().mapper().stats(Fn(i).function(), bar);
  }
  uint64_t BarAddress(int i, int bar) {
    for (const pci::BarSpec& b : Fn(i).function().spec().bars) {
      if (b.index == bar) return Fn(i).function().BarAddress(b);
    }
    return 0;
  }
  std::unique_ptr<GuestVm> vm_;
};

TEST_F(VfioKvmTest, GuestSeesTheRealIdsClassAndBarSizeThroughEveryConfigPath) {
  const std::vector<uint8_t> host = lab::HostConfig(lab::Ivshmem());
  ASSERT_GE(host.size(), 64u);
  const uint32_t id = lab::Dword(host, 0x00);
  EXPECT_EQ(id, 0x11101AF4u);  // ivshmem-plain
  struct Path {
    const char* name;
    bool ecam;
    bool fast;         // the platform's fast path
    bool device_fast;  // the real device's page in it (the shadow rule)
  };
  // By default a real device's page is a hole in the fast path: its reads trap.
  for (const Path& p : {Path{"pio", false, false, false}, Path{"ecam-trap", true, false, false},
                        Path{"ecam-fast, device page trapping", true, true, false},
                        Path{"ecam-fast, device page shadowed", true, true, true}}) {
    SCOPED_TRACE(p.name);
    ASSERT_TRUE(Build({.ecam_fast_path = p.fast, .device_fast_path = p.device_fast}));
    Run(Arg(kIds, kIvshmemSlot, 2, p.ecam));
    EXPECT_EQ(Report("id"), id);
    EXPECT_EQ(Report("class_rev"), lab::Dword(host, 0x08));
    EXPECT_EQ(Report("subsystem"), lab::Dword(host, 0x2C));
    EXPECT_EQ(Report("header_type"), 0u);
    EXPECT_EQ(Report("bar"), BarAddress(0, 2));
    EXPECT_EQ(Report("bar_size"), Fn(0).device().region(2).size);
    EXPECT_EQ(Report("bar_after_sizing"), BarAddress(0, 2));
    const uint64_t ecam_reads = vm_->stats().mmio(vm_->pci().ecam_region(), mmio::Direction::kRead);
    EXPECT_EQ(ecam_reads, p.ecam && !p.device_fast ? Report("config_reads") : 0u);
    EXPECT_GT(Fn(0).counters().config_device_reads, 0u);
  }
}

TEST_F(VfioKvmTest, GuestReadsTheHostSeededRamBarAndItsWriteReachesTheHostFile) {
  ASSERT_TRUE(Build({}));
  Run(Arg(kRam, kIvshmemSlot, 2));
  EXPECT_EQ(Report("host_pattern0"), lab::kSeedMagic);
  EXPECT_EQ(Report("host_pattern1"), lab::Seed());
  EXPECT_EQ(Report("readback"), kGuestPattern);
  EXPECT_EQ(lab::IvshmemFileQword(0x1000), kGuestPattern);  // host -> outer QEMU -> file
  EXPECT_EQ(Stats(0, 2).maps, 1u);                          // through the slot,
  EXPECT_EQ(Fn(0).counters().bar_reads + Fn(0).counters().bar_writes, 0u);  // not trapped
}

TEST_F(VfioKvmTest, EduRegistersWorkThroughASlot) {
  ASSERT_TRUE(Build({.ivshmem = false, .edu = true}));
  Run(Arg(kEdu, kEduSlot, 0));
  ExpectEduAnswered();
  EXPECT_EQ(Stats(0, 0).maps, 1u);
  EXPECT_EQ(Fn(0).counters().bar_reads, 0u);
}

TEST_F(VfioKvmTest, EduRegistersWorkThroughTheTrapPath) {
  ASSERT_TRUE(Build({.ivshmem = false, .edu = true, .mmap_bars = false}));
  Run(Arg(kEdu, kEduSlot, 0));
  ExpectEduAnswered();
  EXPECT_EQ(Stats(0, 0).maps, 0u);
  EXPECT_EQ(Fn(0).counters().bar_reads, 3u);
  EXPECT_EQ(Fn(0).counters().bar_writes, 2u);
}

// VFIO-LAB.md: a slot left over a BAR whose real decode is off makes KVM_RUN fail with
// EFAULT. The device's decode stays on; the guest's view is emulated; its slot goes away.
TEST_F(VfioKvmTest, DecodeOffReadsAllOnesAndOnAgainTheDataUnderBothPolicies) {
  for (pci::MapPolicy policy : {pci::MapPolicy::kEager, pci::MapPolicy::kDeferred}) {
    for (bool mmap : {true, false}) {
      SCOPED_TRACE(absl::StrFormat("%s, %s", pci::MapPolicyName(policy), mmap ? "slot" : "trap"));
      ASSERT_TRUE(Build({.policy = policy, .mmap_bars = mmap}));
      Run(Arg(kDecode, kIvshmemSlot, 2));
      EXPECT_EQ(Report("decode_on"), lab::kSeedMagic & 0xFFFFFFFF);
      EXPECT_EQ(Report("decode_off"), 0xFFFFFFFFu);
      EXPECT_EQ(Report("decode_off64"), ~0ull);
      EXPECT_EQ(Report("decode_on_again"), lab::kSeedMagic & 0xFFFFFFFF);
      EXPECT_EQ(Fn(0).counters().bar_dropped, 2u);
      EXPECT_EQ(Fn(0).counters().device_errors, 0u);
      EXPECT_EQ(Stats(0, 2).maps, mmap ? 2u : 0u);
      EXPECT_EQ(Stats(0, 2).unmaps, mmap ? 1u : 0u);
      const std::vector<uint8_t> host = lab::HostConfig(lab::Ivshmem());
      EXPECT_EQ(lab::Dword(host, pci::cfg::kCommand) & pci::cfg::kCommandMemory,
                pci::cfg::kCommandMemory);
    }
  }
}

TEST_F(VfioKvmTest, GuestWritesToVmmOwnedFieldsNeverReachTheDevice) {
  ASSERT_TRUE(Build({}));
  const std::vector<uint8_t> before = lab::HostConfig(lab::Ivshmem());
  Run(Arg(kOwned, kIvshmemSlot, 2));
  const std::vector<uint8_t> after = lab::HostConfig(lab::Ivshmem());
  for (uint16_t reg = pci::cfg::kBar0; reg < pci::cfg::kBar0 + 24; reg += 4) {
    EXPECT_EQ(lab::Dword(after, reg), lab::Dword(before, reg)) << "BAR register " << reg;
  }
  EXPECT_EQ(lab::Dword(after, pci::cfg::kRomBar), lab::Dword(before, pci::cfg::kRomBar));
  EXPECT_EQ(after[pci::cfg::kInterruptLine], before[pci::cfg::kInterruptLine]);
  EXPECT_EQ(lab::Dword(after, pci::cfg::kCommand) & pci::cfg::kCommandMemory,
            pci::cfg::kCommandMemory);
  EXPECT_EQ(Report("cmd_while_off") & pci::cfg::kCommandMemory, 0u);  // the guest's view
  EXPECT_EQ(Report("rom_sized"), 0u);                                 // no ROM exposed
  EXPECT_EQ(Report("interrupt_line"), 0x0Au);
  EXPECT_EQ(Report("header_type"), 0u);
  EXPECT_EQ(Report("bar_restored"), BarAddress(0, 2));
  EXPECT_GE(Fn(0).counters().config_owned_writes, 9u);
}

TEST_F(VfioKvmTest, EduMsiAndIntxReachTheGuestThroughIrqfds) {
  ASSERT_TRUE(Build({.ivshmem = false, .edu = true, .pc_platform = true}));
  ASSERT_TRUE(Fn(0).intx_routed());
  const uint32_t gsi = boot::PciIntxGsi(kEduSlot, 0);
  Run(Arg(kIrq, kEduSlot, 0, false, gsi));
  EXPECT_NE(Report("msi_cap"), 0u);
  EXPECT_EQ(Report("msi_irqs"), 2u);
  EXPECT_EQ(Report("intx_irqs"), 2u);
  EXPECT_EQ(Report("msi_irqs_after"), 2u);
  EXPECT_EQ(Fn(0).counters().msi_enables, 1u);
  EXPECT_FALSE(Fn(0).msi_enabled());
}

TEST(VfioOpenTest, UsualMistakesGiveClearErrors) {
  auto container = vfio::VfioContainer::Open();
  ASSERT_TRUE(container.ok()) << container.status();
  auto missing = vfio::VfioDevice::Open(**container, "0000:00:1e.7");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  // The q35 LPC bridge is on the host's bus but not bound to vfio-pci.
  auto unbound = vfio::VfioDevice::Open(**container, "00:1f.0");
  EXPECT_EQ(unbound.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unbound.status().message(), HasSubstr("vfio-pci"));
  auto bad = vfio::VfioDevice::Open(**container, "not-a-bdf");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  auto ok = vfio::VfioDevice::Open(**container, lab::Ivshmem());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->region(vfio::kRegionConfig).size, 256u);
  EXPECT_EQ((*ok)->region(2).mapped.size(), 1u);
}

// The group node is root's (0600): another user gets PERMISSION_DENIED saying what to do.
TEST(VfioOpenTest, AnotherUserGetsPermissionDenied) {
  const std::string bdf = lab::Ivshmem();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    constexpr uid_t kNobody = 65534;
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(10);
    auto container = vfio::VfioContainer::Open();  // /dev/vfio/vfio is 0666
    if (!container.ok()) ::_exit(11);
    auto device = vfio::VfioDevice::Open(**container, bdf);
    std::fprintf(stderr, "as nobody: %s\n", device.status().ToString().c_str());
    const bool ok = device.status().code() == absl::StatusCode::kPermissionDenied &&
                    device.status().message().find("run as root") != std::string::npos;
    ::_exit(ok ? 0 : 12);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

std::string Word(uint64_t v) { return absl::StrFormat("0x%08X", v & 0xFFFFFFFF); }

TEST(VfioLinuxTest, LinuxSeesTheRealDevicesWithTheirIdsAndReadsAndWritesTheRamBar) {
  platform::LinuxVmConfig c;
  c.machine.ram_bytes = 128ull << 20;
  c.machine.console_echo = nullptr;
  c.pci.bar_policy = pci::MapPolicy::kDeferred;
  c.pci.vfio = {{.host_address = lab::Ivshmem(), .slot = kIvshmemSlot},
                {.host_address = lab::Edu(), .slot = kEduSlot}};
  c.boot.kernel_path = PCIVMM_LINUX_GUEST_DIR "/vmlinuz";
  c.boot.initrd_path = PCIVMM_LINUX_GUEST_DIR "/initramfs.cpio.gz";
  c.boot.cmdline = absl::StrFormat("%s pcivmm.bar=0000:00:%02x.0,2", platform::kDefaultLinuxCmdline,
                                   kIvshmemSlot);
  auto vm = platform::LinuxVm::Create(std::move(c));
  ASSERT_TRUE(vm.ok()) << vm.status();
  absl::Notification done;
  std::thread watchdog([&] {
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(150))) {
      (*vm)->machine().RequestStop(
          {kvm::kExitStatusVmmError, "test watchdog: guest still running"});
    }
  });
  kvm::StopReason r = (*vm)->Run();
  done.Notify();
  watchdog.join();
  ASSERT_EQ(r.exit_code, 0) << r.detail << "\n" << (*vm)->devices().uart().output_tail();
  std::vector<std::string> want;
  for (const auto& [bdf, slot] :
       {std::pair{lab::Ivshmem(), kIvshmemSlot}, {lab::Edu(), kEduSlot}}) {
    const std::vector<uint8_t> host = lab::HostConfig(bdf);
    want.push_back(absl::StrFormat("0000:00:%02x.0 vendor=0x%04x device=0x%04x class=0x%06x", slot,
                                   lab::Dword(host, 0) & 0xFFFF, lab::Dword(host, 0) >> 16,
                                   lab::Dword(host, 8) >> 8));
  }
  EXPECT_THAT(InitLines(**vm, "pci"), ::testing::IsSupersetOf(want));
  const uint64_t seed = lab::Seed();
  EXPECT_THAT(InitLines(**vm, "barread"),
              ::testing::ElementsAre(absl::StrFormat(
                  "0000:00:%02x.0 2 %s %s %s %s", kIvshmemSlot, Word(lab::kSeedMagic),
                  Word(lab::kSeedMagic >> 32), Word(seed), Word(seed >> 32))));
  EXPECT_THAT(InitLines(**vm, "barwrite"),
              ::testing::ElementsAre(absl::StrFormat("0000:00:%02x.0 2 0x600DF00D", kIvshmemSlot)));
  EXPECT_EQ(lab::IvshmemFileQword(16) & 0xFFFFFFFF, 0x600DF00Du);
  EXPECT_THAT(InitLines(**vm, "error"), ::testing::IsEmpty());
}

}  // namespace
}  // namespace pcivmm
