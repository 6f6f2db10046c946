// KVM tier: real guests on real /dev/kvm (directly, or inside the nested lab). These tests
// fail, never skip, when /dev/kvm is missing: CI runs them in the lab.
#include <linux/kvm.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "tests/kvm/guest_vm.h"
#include "vmm/kvm/exit_dispatcher.h"
#include "vmm/platform/machine.h"

namespace pcivmm {
namespace {

using ::pcivmm::devices::testing::RegisterFile;
using ::pcivmm::devices::testing::StreamPort;
using ::pcivmm::testing::GuestVm;

// Writes raw machine code to a temporary image file.
std::string WriteImage(const std::string& name, std::vector<uint8_t> code) {
  std::string path = ::testing::TempDir() + "/" + name + ".bin";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(code.data()), static_cast<std::streamsize>(code.size()));
  return path;
}

class VmmKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    vm_ = GuestVm::Create();
    ASSERT_TRUE(vm_);
  }
  uint64_t Report(const std::string& key) { return vm_->Report(key); }
  platform::Machine& machine() { return vm_->machine(); }
  std::unique_ptr<GuestVm> vm_;
};

TEST_F(VmmKvmTest, HelloGuestPrintsAndExitsWithItsArgument) {
  kvm::StopReason r = vm_->Run("hello", 7);
  EXPECT_EQ(r.exit_code, 7) << r.detail;
  EXPECT_NE(machine().console().output().find("hello from the pcivmm test guest"),
            std::string::npos);
  EXPECT_EQ(Report("cpu"), 0u);
  EXPECT_EQ(machine().stats().pio(PCIVMM_EXIT_PORT, mmio::Direction::kWrite), 1u);
}

TEST_F(VmmKvmTest, PortIoOfEveryWidthHasExactlyOneExitPerAccess) {
  ASSERT_TRUE(
      machine().pio().Register(PCIVMM_TEST_PIO_PORT, 8, std::make_shared<RegisterFile>(8)).ok());
  auto stream = std::make_shared<StreamPort>();
  ASSERT_TRUE(machine().pio().Register(PCIVMM_TEST_STREAM_PORT, 1, stream).ok());
  kvm::StopReason r = vm_->Run("pio_test");
  ASSERT_EQ(r.exit_code, 0) << r.detail << machine().console().output();
  EXPECT_EQ(Report("bad_widths"), 0u);
  const kvm::ExitStats& s = machine().stats();
  for (int p : {PCIVMM_TEST_PIO_PORT, PCIVMM_TEST_PIO_PORT + 2, PCIVMM_TEST_PIO_PORT + 4}) {
    const auto port = static_cast<uint16_t>(p);
    EXPECT_EQ(s.pio(port, mmio::Direction::kWrite), Report("port_out_each")) << port;
    EXPECT_EQ(s.pio(port, mmio::Direction::kRead), Report("port_in_each")) << port;
  }
  // String I/O: every byte reaches the device exactly once and in order.
  std::vector<uint8_t> got = stream->written();
  ASSERT_EQ(got.size(), Report("stream_bytes"));
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<uint8_t>(i * 7 + 1)) << i;
  EXPECT_EQ(Report("bad_stream"), 0u);
  // KVM may batch a string instruction into one exit or (nested SVM does) exit per item.
  EXPECT_GE(s.pio(PCIVMM_TEST_STREAM_PORT, mmio::Direction::kWrite), 1u);
  EXPECT_LE(s.pio(PCIVMM_TEST_STREAM_PORT, mmio::Direction::kWrite), Report("stream_bytes"));
  EXPECT_GE(s.pio(PCIVMM_TEST_STREAM_PORT, mmio::Direction::kRead), 1u);
}

TEST_F(VmmKvmTest, MmioOfEveryWidthHasExactlyOneExitPerAccess) {
  auto region = machine().mmio().Register(PCIVMM_TEST_MMIO_BASE, 0x1000,
                                          std::make_shared<RegisterFile>(0x1000));
  ASSERT_TRUE(region.ok());
  kvm::StopReason r = vm_->Run("mmio_test");
  ASSERT_EQ(r.exit_code, 0) << r.detail << machine().console().output();
  EXPECT_EQ(Report("bad"), 0u);
  EXPECT_EQ(machine().stats().mmio(*region, mmio::Direction::kRead), Report("mmio_reads"));
  EXPECT_EQ(machine().stats().mmio(*region, mmio::Direction::kWrite), Report("mmio_writes"));
  EXPECT_EQ(machine().stats().exits(KVM_EXIT_MMIO), Report("mmio_reads") + Report("mmio_writes"));
}

TEST_F(VmmKvmTest, ReadOnlySlotReadsNeverExitAndAWriteExitsAsMmio) {
  auto rom = base::HostMapping::CreateMemfd("test-rom", PCIVMM_TEST_ROM_SIZE);
  ASSERT_TRUE(rom.ok());
  uint64_t expected_sum = 0;
  constexpr uint64_t kReads = 20000;
  auto* words = reinterpret_cast<uint64_t*>(rom->data());
  for (uint64_t i = 0; i < PCIVMM_TEST_ROM_SIZE / 8; ++i) words[i] = i * 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < kReads; ++i) expected_sum += words[i % (PCIVMM_TEST_ROM_SIZE / 8)];
  ASSERT_TRUE(machine()
                  .memslots()
                  .Install(PCIVMM_TEST_ROM_BASE, PCIVMM_TEST_ROM_SIZE, rom->data(), true)
                  .ok());
  // Writes to a read-only slot exit as MMIO: a catcher on the bus counts and drops them.
  auto catcher = machine().mmio().Register(PCIVMM_TEST_ROM_BASE, PCIVMM_TEST_ROM_SIZE,
                                           std::make_shared<RegisterFile>(PCIVMM_TEST_ROM_SIZE));
  ASSERT_TRUE(catcher.ok());
  kvm::StopReason r = vm_->Run("rom_test", kReads);
  ASSERT_EQ(r.exit_code, 0) << r.detail << machine().console().output();
  EXPECT_EQ(Report("sum"), expected_sum);
  EXPECT_EQ(Report("write_ignored"), 1u);
  EXPECT_EQ(machine().stats().mmio(*catcher, mmio::Direction::kRead), 0u);
  EXPECT_EQ(machine().stats().mmio(*catcher, mmio::Direction::kWrite), Report("rom_writes"));
  EXPECT_EQ(machine().stats().exits(KVM_EXIT_MMIO), 1u);
  EXPECT_EQ(words[0], 0u);  // the guest's write never reached the backing
}

TEST_F(VmmKvmTest, PioStormExitCountEqualsTheGuestsOwnCount) {
  ASSERT_TRUE(
      machine().pio().Register(PCIVMM_TEST_PIO_PORT, 8, std::make_shared<RegisterFile>(8)).ok());
  kvm::StopReason r = vm_->Run("pio_storm", 12345);
  ASSERT_EQ(r.exit_code, 0) << r.detail;
  EXPECT_EQ(Report("port_writes"), 12345u);
  EXPECT_EQ(machine().stats().pio(PCIVMM_TEST_PIO_PORT, mmio::Direction::kWrite), 12345u);
}

TEST_F(VmmKvmTest, UnclaimedPortReadsAllOnesInTheGuest) {
  // in al, 0x80 ; out 0xF4, al  (exit status = what the guest read)
  kvm::StopReason r = vm_->RunImage(WriteImage("unclaimed", {0xE4, 0x80, 0xE6, 0xF4, 0xF4}));
  EXPECT_EQ(r.exit_code, 0xFF) << r.detail;
  EXPECT_EQ(machine().pio().unclaimed_reads(), 1u);
}

TEST_F(VmmKvmTest, HltEndsTheVcpuCleanly) {
  kvm::StopReason r = vm_->RunImage(WriteImage("hlt", {0xF4}));
  EXPECT_EQ(r.exit_code, 0) << r.detail;
  EXPECT_NE(r.detail.find("halted"), std::string::npos);
  EXPECT_EQ(machine().stats().exits(KVM_EXIT_HLT), 1u);
}

TEST_F(VmmKvmTest, TripleFaultEndsWithAClearError) {
  // ud2 with no IDT: #UD -> #DF -> triple fault -> KVM_EXIT_SHUTDOWN.
  kvm::StopReason r = vm_->RunImage(WriteImage("ud2", {0x0F, 0x0B}));
  EXPECT_EQ(r.exit_code, kvm::kExitStatusTripleFault) << r.detail;
  EXPECT_NE(r.detail.find("triple fault"), std::string::npos);
}

TEST_F(VmmKvmTest, SpinningGuestIsStoppedFromAnotherThread) {
  ASSERT_TRUE(machine().LoadTestGuest(WriteImage("spin", {0xEB, 0xFE}), 0).ok());
  std::thread stopper([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    machine().RequestStop({42, "stopped by the test"});
  });
  kvm::StopReason r = machine().Run();
  stopper.join();
  EXPECT_EQ(r.exit_code, 42);
  EXPECT_EQ(r.detail, "stopped by the test");
}

TEST(KvmOpenTest, MissingDeviceIsUnavailableAndNamesTheLab) {
  platform::MachineConfig config;
  config.kvm_path = "/nonexistent/kvm";
  auto m = platform::Machine::Create(config);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(m.status().message().find("./dev lab"), std::string::npos);
}

}  // namespace
}  // namespace pcivmm
