#include "vmm/kvm/exit_dispatcher.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::kvm {
namespace {

constexpr size_t kRunSize = 4096 * 2;

class ByteSink : public mmio::IoDevice {
 public:
  std::string_view Name() const override { return "sink"; }
  void Read(uint64_t, absl::Span<uint8_t> d, int) override {
    for (auto& b : d) b = next++;
  }
  void Write(uint64_t, absl::Span<const uint8_t> d, int) override {
    bytes.insert(bytes.end(), d.begin(), d.end());
    ++writes;
  }
  std::vector<uint8_t> bytes;
  int writes = 0;
  uint8_t next = 0;
};

// A scripted kvm_run page, as KVM would leave it after an exit.
class ScriptedRun {
 public:
  ScriptedRun() : mem_(new uint64_t[kRunSize / 8]()) {}
  kvm_run* run() { return reinterpret_cast<kvm_run*>(mem_.get()); }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(mem_.get()) + 4096; }
  void Io(uint8_t dir, uint16_t port, uint8_t size, uint32_t count) {
    run()->exit_reason = KVM_EXIT_IO;
    run()->io = {dir, size, port, count, 4096};
  }
  void Mmio(uint64_t addr, uint32_t len, bool write) {
    run()->exit_reason = KVM_EXIT_MMIO;
    run()->mmio.phys_addr = addr;
    run()->mmio.len = len;
    run()->mmio.is_write = write;
  }

 private:
  std::unique_ptr<uint64_t[]> mem_;
};

class ExitDispatcherTest : public ::testing::Test {
 protected:
  ExitDispatcherTest() : d_(&pio_, &mmio_, &stats_, 0, kRunSize) {
    pio_.Register(0x518, 1, sink_).IgnoreError();
    region_ = *mmio_.Register(0xD0000000, 0x1000, sink_);
  }
  mmio::Bus pio_{"pio", 0x10000};
  mmio::Bus mmio_{"mmio", UINT64_MAX};
  VcpuExitStats stats_;
  std::shared_ptr<ByteSink> sink_ = std::make_shared<ByteSink>();
  ExitDispatcher d_;
  ScriptedRun s_;
  int region_ = 0;
};

TEST_F(ExitDispatcherTest, RepOutsbDeliversEveryByteInOrder) {
  s_.Io(KVM_EXIT_IO_OUT, 0x518, 1, 100);
  for (int i = 0; i < 100; ++i) s_.data()[i] = static_cast<uint8_t>(i * 3);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  ASSERT_EQ(sink_->bytes.size(), 100u);
  EXPECT_EQ(sink_->bytes[99], static_cast<uint8_t>(99 * 3));
  EXPECT_EQ(sink_->writes, 100);
  EXPECT_EQ(stats_.pio(0x518, mmio::Direction::kWrite), 1u);  // one exit
  EXPECT_EQ(stats_.exits(KVM_EXIT_IO), 1u);
}

TEST_F(ExitDispatcherTest, RepInsbFillsEveryByte) {
  s_.Io(KVM_EXIT_IO_IN, 0x518, 1, 300);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  EXPECT_EQ(s_.data()[0], 0);
  EXPECT_EQ(s_.data()[299], static_cast<uint8_t>(299));
  EXPECT_EQ(stats_.pio(0x518, mmio::Direction::kRead), 1u);
}

TEST_F(ExitDispatcherTest, UnclaimedPortReadsAllOnes) {
  s_.Io(KVM_EXIT_IO_IN, 0x9999, 4, 1);
  std::memset(s_.data(), 0, 4);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  EXPECT_EQ(s_.data()[0], 0xFF);
  EXPECT_EQ(s_.data()[3], 0xFF);
  EXPECT_EQ(pio_.unclaimed_reads(), 1u);
}

TEST_F(ExitDispatcherTest, IoDataOutsideTheRunPageStopsTheVcpu) {
  s_.Io(KVM_EXIT_IO_OUT, 0x518, 4, 4096);
  auto stop = d_.Dispatch(s_.run());
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->exit_code, kExitStatusUnhandledExit);
  EXPECT_TRUE(sink_->bytes.empty());
}

TEST_F(ExitDispatcherTest, MmioIsCountedByRegionAndDirection) {
  s_.Mmio(0xD0000010, 8, /*write=*/true);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  s_.Mmio(0xD0000010, 4, /*write=*/false);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  s_.Mmio(0xC0000000, 4, /*write=*/false);
  EXPECT_FALSE(d_.Dispatch(s_.run()));
  EXPECT_EQ(stats_.mmio(region_, mmio::Direction::kWrite), 1u);
  EXPECT_EQ(stats_.mmio(region_, mmio::Direction::kRead), 1u);
  EXPECT_EQ(stats_.mmio(mmio::Bus::kUnclaimed, mmio::Direction::kRead), 1u);
  EXPECT_EQ(s_.run()->mmio.data[0], 0xFF);
  EXPECT_EQ(stats_.exits(KVM_EXIT_MMIO), 3u);
}

TEST_F(ExitDispatcherTest, TerminalExitsHaveClearOutcomes) {
  struct Case {
    uint32_t reason;
    int code;
  };
  for (Case c : {Case{KVM_EXIT_HLT, 0}, Case{KVM_EXIT_SHUTDOWN, kExitStatusTripleFault},
                 Case{KVM_EXIT_FAIL_ENTRY, kExitStatusFailEntry},
                 Case{KVM_EXIT_INTERNAL_ERROR, kExitStatusInternalError},
                 Case{KVM_EXIT_DEBUG, kExitStatusUnhandledExit}}) {
    s_.run()->exit_reason = c.reason;
    auto stop = d_.Dispatch(s_.run());
    ASSERT_TRUE(stop) << c.reason;
    EXPECT_EQ(stop->exit_code, c.code) << stop->detail;
    EXPECT_FALSE(stop->detail.empty());
  }
}

TEST_F(ExitDispatcherTest, SystemEventShutdownIsACleanStop) {
  s_.run()->exit_reason = KVM_EXIT_SYSTEM_EVENT;
  s_.run()->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
  auto stop = d_.Dispatch(s_.run());
  ASSERT_TRUE(stop);
  EXPECT_EQ(stop->exit_code, 0);
  s_.run()->system_event.type = KVM_SYSTEM_EVENT_CRASH;
  EXPECT_EQ(d_.Dispatch(s_.run())->exit_code, kExitStatusGuestCrash);
}

}  // namespace
}  // namespace pcivmm::kvm
