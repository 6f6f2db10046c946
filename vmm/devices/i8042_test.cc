#include "vmm/devices/i8042.h"

#include <memory>

#include "gtest/gtest.h"
#include "mmio/io_bytes.h"

namespace pcivmm::devices {
namespace {

constexpr uint8_t kOutputFull = 0x01, kInputFull = 0x02, kAuxData = 0x20;

class I8042Test : public ::testing::Test {
 protected:
  uint8_t Status() { return In(*command_); }
  uint8_t Data() { return In(*data_); }
  void Command(uint8_t value) { Out(*command_, value); }
  void Data(uint8_t value) { Out(*data_, value); }
  // What Linux's i8042_command does for a command with one reply byte.
  uint8_t Ask(uint8_t command) {
    Command(command);
    EXPECT_EQ(Status() & kOutputFull, kOutputFull) << "no reply to " << int{command};
    return Data();
  }

  static uint8_t In(mmio::IoDevice& d) { return mmio::ReadByte(d, 0); }
  static void Out(mmio::IoDevice& d, uint8_t value) { mmio::WriteByte(d, 0, value); }

  int resets_ = 0;
  std::shared_ptr<I8042> kbc_ = std::make_shared<I8042>([this] { ++resets_; });
  std::shared_ptr<mmio::IoDevice> data_ = I8042::DataPort(kbc_);
  std::shared_ptr<mmio::IoDevice> command_ = I8042::CommandPort(kbc_);
};

TEST_F(I8042Test, StatusReportsNoDataAndNotBusy) {
  EXPECT_EQ(Status() & (kOutputFull | kInputFull), 0);
  EXPECT_EQ(Status() & 0x04, 0x04);  // system flag: POST passed
}

TEST_F(I8042Test, SelfTestAnswers55) {
  EXPECT_EQ(Ask(0xAA), 0x55);
  EXPECT_EQ(Status() & kOutputFull, 0);
}

TEST_F(I8042Test, InterfaceTestsReportNoError) {
  EXPECT_EQ(Ask(0xAB), 0x00);
  EXPECT_EQ(Ask(0xA9), 0x00);
}

// Linux "reboot=k": outb(0xfe, 0x64).
TEST_F(I8042Test, PulseResetCommandResets) {
  Command(0xFE);
  EXPECT_EQ(resets_, 1);
  Command(0xFF);  // pulses no line
  EXPECT_EQ(resets_, 1);
  Command(0xF0);  // pulses all four, reset included
  EXPECT_EQ(resets_, 2);
  EXPECT_EQ(kbc_->resets(), 2u);
}

TEST_F(I8042Test, OutputPortWriteWithResetBitLowResets) {
  Command(0xD1);
  Data(0x03);
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(Ask(0xD0), 0x03);
  Command(0xD1);
  Data(0x02);
  EXPECT_EQ(resets_, 1);
}

// i8042_controller_init reads the CTR until two reads agree, then writes it back.
TEST_F(I8042Test, CommandByteReadsBackWhatWasWritten) {
  const uint8_t ctr = Ask(0x20);
  EXPECT_EQ(Ask(0x20), ctr);
  Command(0x60);
  EXPECT_EQ(Status() & 0x08, 0x08);  // last write was a command
  Data(0x74);
  EXPECT_EQ(Ask(0x20), 0x74);
  Command(0x65);  // RAM byte 5
  Data(0x9C);
  EXPECT_EQ(Ask(0x25), 0x9C);
}

TEST_F(I8042Test, PortEnableCommandsShowInCommandByte) {
  Command(0xA7);
  EXPECT_EQ(Ask(0x20) & 0x20, 0x20);
  Command(0xA8);
  EXPECT_EQ(Ask(0x20) & 0x20, 0x00);
  Command(0xAD);
  EXPECT_EQ(Ask(0x20) & 0x10, 0x10);
  Command(0xAE);
  EXPECT_EQ(Ask(0x20) & 0x10, 0x00);
}

// i8042_check_aux's loopback test and i8042_set_mux_mode: 0xD3 echoes through the aux port.
TEST_F(I8042Test, AuxBufferWriteEchoesAsAuxData) {
  Command(0xD3);
  Data(0x5A);
  EXPECT_EQ(Status() & (kOutputFull | kAuxData), kOutputFull | kAuxData);
  EXPECT_EQ(Data(), 0x5A);
  Command(0xD2);
  Data(0x11);
  EXPECT_EQ(Status() & (kOutputFull | kAuxData), kOutputFull);
  EXPECT_EQ(Data(), 0x11);
}

TEST_F(I8042Test, BytesForAbsentDevicesAreDroppedAndCounted) {
  Data(0xFF);  // keyboard reset
  Command(0xD4);
  Data(0xF4);  // mouse enable
  EXPECT_EQ(Status() & kOutputFull, 0);
  EXPECT_EQ(kbc_->dropped_device_bytes(), 2u);
}

TEST_F(I8042Test, EmptyDataPortRepeatsLastByte) {
  EXPECT_EQ(Ask(0xAA), 0x55);
  EXPECT_EQ(Data(), 0x55);
}

TEST_F(I8042Test, UnknownCommandsAreCountedAndIgnored) {
  Command(0x05);
  Command(0xC0);  // read input port: not emulated
  EXPECT_EQ(kbc_->unknown_commands(), 2u);
  EXPECT_EQ(Status() & kOutputFull, 0);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, NewCommandAbandonsPendingOne) {
  Command(0xD1);
  Command(0xAA);
  Data(0x00);  // now a keyboard byte, not the output port
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(Data(), 0x55);
}

TEST_F(I8042Test, WideAccessesAreCountedAndIgnored) {
  uint8_t two[2] = {0, 0};
  command_->Read(0, two, 0);
  EXPECT_EQ(two[0], 0xFF);
  const uint8_t reset[2] = {0xFE, 0xFE};
  command_->Write(0, reset, 0);
  EXPECT_EQ(resets_, 0);
  EXPECT_EQ(kbc_->bad_accesses(), 2u);
}

TEST_F(I8042Test, PortsKeepTheControllerAlive) {
  std::shared_ptr<mmio::IoDevice> command = I8042::CommandPort(std::make_shared<I8042>(nullptr));
  Out(*command, 0xAA);
  EXPECT_EQ(In(*command) & kOutputFull, kOutputFull);
  Out(*command, 0xFE);  // no reset callback: nothing to call
}

}  // namespace
}  // namespace pcivmm::devices
