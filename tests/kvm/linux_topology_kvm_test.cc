// PCIe topology under Linux: GPU-like devices behind root ports and behind a switch, the bus
// numbers and windows firmware (pcivmm) left, as Linux enumerates them through each config path,
// and a BAR behind a bridge read from the guest.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/kvm/linux_boot_harness.h"
#include "tests/kvm/linux_init_lines.h"

namespace pcivmm {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

pci::DeviceSpec Behind(pci::DeviceSpec d, std::string port) {
  d.parent = std::move(port);
  d.slot = 0;
  return d;
}

// Two root ports at 00:01.0 and 00:02.0, a GPU behind each (buses 1 and 2).
std::vector<pci::DeviceSpec> RootPorts() {
  return {pci::RootPortDevice("rp0", 1, 1, false), pci::RootPortDevice("rp1", 2, 2, false),
          Behind(pci::GpuLikeDevice("gpu0", 0, kGpuBar1), "rp0"),
          Behind(pci::GpuLikeDevice("gpu1", 0, kGpuBar1), "rp1")};
}

// Root port 00:01.0 -> switch upstream port (bus 1) -> downstream ports 02:00.0, 02:01.0 ->
// a GPU behind each (buses 3 and 4).
std::vector<pci::DeviceSpec> Switch() {
  return {pci::RootPortDevice("rp0", 1, 0, false),
          pci::SwitchUpstreamDevice("up", "rp0"),
          pci::SwitchDownstreamDevice("down0", "up", 0, 1, false),
          pci::SwitchDownstreamDevice("down1", "up", 1, 2, false),
          Behind(pci::GpuLikeDevice("gpu0", 0, kGpuBar1), "down0"),
          Behind(pci::GpuLikeDevice("gpu1", 0, kGpuBar1), "down1")};
}

// "PCIVMM pci BDF vendor=0x.. device=0x.. class=0x.." lines, by BDF.
std::vector<std::string> Seen(platform::LinuxVm& vm) {
  std::vector<std::string> out;
  for (const std::string& line : InitLines(vm, "pci")) out.push_back(line);
  return out;
}

void ExpectLinuxSeesEveryFunctionWhereTheBusPutIt(platform::LinuxVm& vm) {
  const std::vector<std::string> seen = Seen(vm);
  EXPECT_EQ(seen.size(), vm.pci().bus().functions().size()) << ::testing::PrintToString(seen);
  for (const pci::PciFunction* f : vm.pci().bus().functions()) {
    const auto at = vm.pci().bus().AddressOf(*f);
    ASSERT_TRUE(at.has_value()) << f->spec().name;
    EXPECT_THAT(seen, Contains(HasSubstr(absl::StrFormat("0000:%s vendor=0x%04x device=0x%04x",
                                                         at->ToString(), f->spec().vendor_id,
                                                         f->spec().device_id))))
        << f->spec().name;
  }
}

TEST(LinuxTopologyKvmTest, LinuxFindsGpusBehindRootPortsThroughPioAndEcam) {
  auto vm = MakeVm({.devices = RootPorts()});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  ExpectLinuxSeesEveryFunctionWhereTheBusPutIt(*vm);
  EXPECT_THAT(Seen(*vm), Contains(HasSubstr("0000:00:01.0 vendor=0x1b36 device=0x000c "
                                            "class=0x060400")));
  EXPECT_THAT(Seen(*vm), Contains(HasSubstr("0000:02:00.0 vendor=0x10de")));
  EXPECT_THAT(InitLines(*vm, "error"), ::testing::IsEmpty());
}

TEST(LinuxTopologyKvmTest, LinuxFindsGpusBehindASwitchWithEcamOnlyAndTheFastPath) {
  auto vm = MakeVm({.pio = false, .fast_path = true, .devices = Switch()});
  ASSERT_NE(vm, nullptr);
  Boot(*vm);
  ExpectLinuxSeesEveryFunctionWhereTheBusPutIt(*vm);
  EXPECT_THAT(Seen(*vm), Contains(HasSubstr("0000:02:01.0 vendor=0x104c device=0x8233")));
  EXPECT_THAT(Seen(*vm), Contains(HasSubstr("0000:04:00.0 vendor=0x10de")));
  // The shadow covers every bus the switch numbers: no ECAM read exited.
  const int ecam = vm->pci().ecam_region();
  EXPECT_EQ(vm->machine().stats().mmio(ecam, mmio::Direction::kRead), 0u);
  EXPECT_GT(vm->machine().stats().mmio(ecam, mmio::Direction::kWrite), 0u);
}

// The guest reads and writes the BAR of a GPU behind a root port: the BAR is mapped inside
// the port's prefetchable window.
TEST(LinuxTopologyKvmTest, GuestReadsHostPatternThroughABarBehindARootPort) {
  auto vm = MakeVm({.cmdline_extra = "pcivmm.bar=0000:02:00.0,1", .devices = RootPorts()});
  ASSERT_NE(vm, nullptr);
  const pci::PciFunction* gpu = vm->pci().bus().functions().back();
  ASSERT_EQ(gpu->spec().name, "gpu1");
  ExpectGuestReadsAndWritesBar1(*vm, *gpu, "0000:02:00.0");
}

}  // namespace
}  // namespace pcivmm
