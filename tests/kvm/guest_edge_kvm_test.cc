// Guest edge cases with real exits (guest-images/edge_test.c): a BAR over the LAPIC page,
// type-1 accesses to buses past the ECAM window, ECAM accesses at and past the window's end.
// Each gets the spec's answer (all-ones reads, dropped writes), is counted, and the platform
// behind it keeps working.
#include <cstring>

#include "gtest/gtest.h"
#include "tests/kvm/guest_vm.h"

namespace pcivmm {
namespace {

using ::pcivmm::testing::GuestVm;

constexpr uint64_t kSeed = 0x1122334455667788ull;
constexpr uint64_t kAllOnes32 = 0xFFFFFFFFull;

std::unique_ptr<GuestVm> OneGpu(bool fast_path, bool pc_platform = false) {
  platform::PciConfig pc;
  pc.devices = {pci::GpuLikeDevice("gpu0", 1)};
  pc.ecam_fast_path = fast_path;
  platform::MachineConfig mc;
  mc.pc_platform = pc_platform;
  return GuestVm::CreateWith(mc, pc);
}

void RunEdgeTest(GuestVm& vm, uint64_t arg) {
  const kvm::StopReason r = vm.Run("edge_test", arg);
  ASSERT_EQ(r.exit_code, 0) << r.detail;
}

// The in-kernel LAPIC answers at its page while a 16 MiB BAR is programmed over it: the
// mapper refuses the placement (a conflict, no memory slot over the APICs) and maps the BAR
// again once it is moved back.
TEST(GuestEdgeKvmTest, ABarOverTheLapicIsRefusedAndTheLapicStillAnswers) {
  auto vm = OneGpu(/*fast_path=*/false, /*pc_platform=*/true);
  ASSERT_NE(vm, nullptr);
  const pci::PciFunction& gpu = *vm->pci().bus().Find({0, 1, 0});
  auto bar0 = vm->pci().mapper().Backing(gpu, 0);
  ASSERT_TRUE(bar0.ok()) << bar0.status();
  std::memcpy(bar0->data(), &kSeed, 8);
  RunEdgeTest(*vm, 0);
  EXPECT_EQ(vm->Report("bar0_moved"), 0xFE000000u);  // 0xFEE00000 aligned down to 16 MiB
  EXPECT_NE(vm->Report("lapic_before"), kAllOnes32);
  EXPECT_EQ(vm->Report("lapic_during"), vm->Report("lapic_before"));
  EXPECT_EQ(vm->Report("after_restore"), kSeed & kAllOnes32);
  EXPECT_EQ(vm->pci().mapper().stats(gpu, 0).conflicts, 1u);
}

// Only bus 0 exists: type-1 reads of buses 1 and 255 return all-ones, writes to them are
// dropped (none aliases onto bus 0), and each is counted on the PIO path.
TEST(GuestEdgeKvmTest, TypeOneAccessesPastTheEcamBusesReadAllOnesAndDropWrites) {
  auto vm = OneGpu(/*fast_path=*/false);
  ASSERT_NE(vm, nullptr);
  RunEdgeTest(*vm, 1);
  EXPECT_EQ(vm->Report("bus1_vendor"), kAllOnes32);
  EXPECT_EQ(vm->Report("bus255_vendor"), kAllOnes32);
  EXPECT_EQ(vm->Report("bus0_bar0_unchanged"), 1u);
  const pci::ConfigStats& st = vm->pci().bus().stats();
  EXPECT_EQ(st.accesses(pci::ConfigPath::kPio, mmio::Direction::kRead), 2u);
  EXPECT_EQ(st.accesses(pci::ConfigPath::kPio, mmio::Direction::kWrite), 2u);
  EXPECT_EQ(st.function_accesses(pci::ConfigPath::kPio, mmio::Direction::kWrite, {0, 1, 0}), 0u);
}

// At the window's last dword an absent function reads all-ones; the bytes past the end
// belong to nobody (unclaimed: all-ones, counted, the write dropped); a read straddling the
// end gets all-ones in both halves. The same with the window trapping and as the fast path's
// read-only slot.
TEST(GuestEdgeKvmTest, EcamAccessesAtAndPastTheWindowsEndReadAllOnes) {
  for (bool fast_path : {false, true}) {
    SCOPED_TRACE(fast_path ? "fast path" : "trap");
    auto vm = OneGpu(fast_path);
    ASSERT_NE(vm, nullptr);
    RunEdgeTest(*vm, 2);
    EXPECT_EQ(vm->Report("last_dword"), kAllOnes32);
    EXPECT_EQ(vm->Report("straddling"), ~0ull);
    EXPECT_EQ(vm->Report("past_end"), kAllOnes32);
    EXPECT_EQ(vm->Report("past_end_again"), kAllOnes32);
    EXPECT_EQ(vm->Report("vendor"), 0x20B510DEu);
    EXPECT_EQ(vm->machine().mmio().unclaimed_reads(), 3u);  // straddle's upper half, 2 past
    EXPECT_EQ(vm->machine().mmio().unclaimed_writes(), 1u);
  }
}

}  // namespace
}  // namespace pcivmm
