#include "vmm/devices/serial_uart.h"

#include <string>

#include "gtest/gtest.h"
#include "mmio/io_bytes.h"
#include "vmm/devices/fake_irq_line.h"

namespace pcivmm::devices {
namespace {

// Register offsets and bits as the data sheet numbers them, spelled out here rather than
// taken from the implementation.
constexpr uint64_t kData = 0, kIer = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6,
                   kScr = 7;
constexpr uint8_t kOut2 = 0x08, kLoop = 0x10;

class SerialUartTest : public ::testing::Test {
 protected:
  explicit SerialUartTest(SerialUartOptions options = {})
      : uart_(
            &irq_, [this](std::string_view s) { sunk_.append(s); }, options) {}
  void TearDown() override { EXPECT_EQ(irq_.redundant_sets(), 0u); }

  uint8_t In(uint64_t offset) { return mmio::ReadByte(uart_, offset); }
  void Out(uint64_t offset, uint8_t value) { mmio::WriteByte(uart_, offset, value); }

  testing::FakeIrqLine irq_;
  std::string sunk_;
  SerialUart uart_;
};

TEST_F(SerialUartTest, ResetStateIsIdle) {
  EXPECT_EQ(In(kIer), 0x00);
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_EQ(In(kLsr), 0x60);  // THRE | TEMT
  EXPECT_EQ(In(kMsr), 0xB0);  // a connected peer: DCD | DSR | CTS
  EXPECT_FALSE(irq_.level());
}

// Linux autoconfig: "scratch2 = IER & 0x0f" after writing 0, "scratch3" after writing 0x0F.
TEST_F(SerialUartTest, IerKeepsOnlyItsLowNibble) {
  Out(kIer, 0x00);
  EXPECT_EQ(In(kIer), 0x00);
  Out(kIer, 0x0F);
  EXPECT_EQ(In(kIer), 0x0F);
  Out(kIer, 0xF0);  // autoconfig_16550a's UUE probe must read back 0 (not an XScale)
  EXPECT_EQ(In(kIer), 0x00);
}

TEST_F(SerialUartTest, ScratchRegisterReadsBack) {
  Out(kScr, 0xA5);
  EXPECT_EQ(In(kScr), 0xA5);
  Out(kScr, 0x5A);
  EXPECT_EQ(In(kScr), 0x5A);
}

// Linux autoconfig's loopback test: MCR = LOOP | 0x0A must read MSR & 0xF0 == 0x90.
TEST_F(SerialUartTest, LoopbackWiresModemOutputsToInputs) {
  Out(kMcr, kLoop | 0x0A);           // RTS | OUT2
  EXPECT_EQ(In(kMsr) & 0xF0, 0x90);  // CTS | DCD
  Out(kMcr, kLoop | 0x05);           // DTR | OUT1
  EXPECT_EQ(In(kMsr) & 0xF0, 0x60);  // DSR | RI
  Out(kMcr, 0);
  EXPECT_EQ(In(kMsr) & 0xF0, 0xB0);
}

TEST_F(SerialUartTest, ModemInputChangesLatchDeltaBitsUntilMsrRead) {
  Out(kMcr, kLoop | 0x04);           // RI on (from OUT1); CTS, DSR, DCD off
  EXPECT_EQ(In(kMsr), 0x40 | 0x0B);  // DCTS | DDSR | DDCD
  EXPECT_EQ(In(kMsr), 0x40);         // read clears the deltas
  Out(kMcr, kLoop);                  // RI goes off: trailing edge
  EXPECT_EQ(In(kMsr), 0x04);         // TERI
  Out(kMcr, kLoop | 0x04);           // RI back on: no TERI
  EXPECT_EQ(In(kMsr), 0x40);
}

// Linux: FCR = ENABLE_FIFO, then "IIR >> 6" is 3 for a 16550A; the TI16750 probe wants
// IIR bit 5 clear even when FCR bit 5 (64-byte FIFO) is written.
TEST_F(SerialUartTest, FifoEnableShowsInIirTopBits) {
  Out(kFcr, 0x01);
  EXPECT_EQ(In(kIir) >> 6, 3);
  Out(kFcr, 0x21);
  EXPECT_EQ(In(kIir) & 0xE0, 0xC0);
  Out(kFcr, 0x00);
  EXPECT_EQ(In(kIir), 0x01);
}

// autoconfig_16550a reads offset 2 with LCR = 0x80 and 0xBF looking for an EFR (reads 0):
// on a 16550A that offset is still IIR, which is never 0 with FIFOs on.
TEST_F(SerialUartTest, OffsetTwoIsIirWhateverLcr) {
  Out(kFcr, 0x01);
  Out(kLcr, 0x80);
  EXPECT_EQ(In(kIir), 0xC1);
  Out(kLcr, 0xBF);
  EXPECT_EQ(In(kIir), 0xC1);
}

// serial8250_do_startup's THRE test: IER = THRI, read IIR (THRE); IER = 0; IER = THRI,
// read IIR again: a real 16550 reasserts THRE, so both reads must show it.
TEST_F(SerialUartTest, EnablingEtbeiRaisesThreAndIirReadClearsIt) {
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_EQ(In(kIir), 0x01);  // cleared by the read that reported it
  Out(kIer, 0x00);
  Out(kIer, 0x02);
  EXPECT_EQ(In(kIir), 0x02);
}

TEST_F(SerialUartTest, EachTransmittedByteGoesToSinkAndRaisesThre) {
  Out(kMcr, kOut2);
  Out(kIer, 0x02);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_FALSE(irq_.level());
  Out(kData, 'o');
  Out(kData, 'k');
  EXPECT_EQ(sunk_, "ok");
  EXPECT_EQ(uart_.output_tail(), "ok");
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(In(kIir), 0x02);
  EXPECT_EQ(uart_.stats().tx_bytes, 2u);
}

TEST_F(SerialUartTest, IrqLineFollowsOut2) {
  Out(kIer, 0x02);
  EXPECT_EQ(uart_.PeekIir(), 0x02);
  EXPECT_FALSE(irq_.level());  // pending, but OUT2 gates it
  Out(kMcr, kOut2);
  EXPECT_TRUE(irq_.level());
  Out(kMcr, kOut2 | kLoop);  // loopback forces the OUT pins inactive
  EXPECT_FALSE(irq_.level());
  Out(kMcr, kOut2);
  EXPECT_TRUE(irq_.level());
  Out(kMcr, 0);
  EXPECT_FALSE(irq_.level());
}

TEST_F(SerialUartTest, ReceivedBytesRaiseRxInterruptUntilRead) {
  Out(kMcr, kOut2);
  Out(kIer, 0x01);
  EXPECT_EQ(uart_.Receive("hi"), 2u);
  EXPECT_TRUE(irq_.level());
  EXPECT_EQ(In(kIir), 0x04);
  EXPECT_EQ(In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(kData), 'h');
  EXPECT_EQ(In(kData), 'i');
  EXPECT_EQ(In(kLsr) & 0x01, 0x00);
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_FALSE(irq_.level());
  EXPECT_EQ(uart_.stats().rx_bytes, 2u);
}

// With FIFOs on, below the trigger level the data is reported as a character timeout (IIR
// 0xC); at the trigger level as "received data available" (0x4).
TEST_F(SerialUartTest, FifoTriggerLevelSelectsRxInterruptKind) {
  Out(kFcr, 0xC1);  // trigger at 14 bytes
  Out(kIer, 0x01);
  uart_.Receive("abc");
  EXPECT_EQ(In(kIir), 0xCC);
  uart_.Receive("defghijklmn");  // 14 in all
  EXPECT_EQ(In(kIir), 0xC4);
  In(kData);
  EXPECT_EQ(In(kIir), 0xCC);
}

TEST_F(SerialUartTest, FcrClearsReceiveFifo) {
  Out(kFcr, 0x01);
  uart_.Receive("xyz");
  Out(kFcr, 0x03);  // enable | clear RX
  EXPECT_EQ(In(kLsr) & 0x01, 0);
  uart_.Receive("xyz");
  Out(kFcr, 0x00);  // leaving FIFO mode clears too
  EXPECT_EQ(In(kLsr) & 0x01, 0);
}

TEST_F(SerialUartTest, DivisorLatchSharesOffsetsWithoutSideEffects) {
  Out(kIer, 0x05);
  Out(kLcr, 0x83);  // DLAB | 8 bits
  Out(kData, 0x01);
  Out(kIer, 0x02);
  EXPECT_EQ(In(kData), 0x01);
  EXPECT_EQ(In(kIer), 0x02);
  Out(kLcr, 0x03);
  EXPECT_EQ(In(kIer), 0x05);
  EXPECT_EQ(In(kLcr), 0x03);
  EXPECT_TRUE(sunk_.empty());
}

TEST_F(SerialUartTest, LoopbackSendsTransmitterToReceiverOnly) {
  Out(kMcr, kLoop);
  Out(kData, 'x');
  EXPECT_TRUE(sunk_.empty());
  EXPECT_EQ(In(kLsr) & 0x01, 0x01);
  EXPECT_EQ(In(kData), 'x');
  EXPECT_EQ(uart_.Receive("host"), 0u);  // the serial input is disconnected in loopback
  EXPECT_EQ(uart_.stats().rx_dropped, 4u);
}

TEST_F(SerialUartTest, InterruptPrioritiesFollowTheDataSheet) {
  Out(kMcr, kLoop);  // modem inputs change: DCTS, DDSR, DDCD latch
  Out(kMcr, kOut2);
  Out(kIer, 0x0F);
  uart_.Receive("a");
  EXPECT_EQ(In(kIir), 0x04);  // RX data beats THRE and modem status
  In(kData);
  EXPECT_EQ(In(kIir), 0x02);  // THRE next; the read clears it
  EXPECT_EQ(In(kIir), 0x00);  // modem status last
  EXPECT_TRUE(irq_.level());
  In(kMsr);
  EXPECT_EQ(In(kIir), 0x01);
  EXPECT_FALSE(irq_.level());
}

class SmallFifoSerialUartTest : public SerialUartTest {
 protected:
  SmallFifoSerialUartTest() : SerialUartTest({.rx_fifo_bytes = 2, .output_tail_bytes = 4}) {}
};

TEST_F(SmallFifoSerialUartTest, OverflowDropsCountsAndReportsOverrun) {
  Out(kMcr, kOut2);
  Out(kIer, 0x05);  // RX data and line status
  EXPECT_EQ(uart_.Receive("abcd"), 2u);
  EXPECT_EQ(uart_.stats().rx_dropped, 2u);
  EXPECT_EQ(uart_.rx_space(), 0u);
  EXPECT_EQ(In(kIir), 0x06);         // line status has the highest priority
  EXPECT_EQ(In(kLsr) & 0x03, 0x03);  // DR | OE
  EXPECT_EQ(In(kLsr) & 0x02, 0x00);  // OE clears on read
  EXPECT_EQ(In(kIir), 0x04);
  EXPECT_EQ(In(kData), 'a');
  EXPECT_EQ(In(kData), 'b');
  EXPECT_EQ(In(kData), 'b');  // an empty RBR repeats the last byte
  EXPECT_FALSE(irq_.level());
}

TEST_F(SmallFifoSerialUartTest, OutputTailKeepsTheLastBytes) {
  for (const char c : std::string("0123456789")) Out(kData, static_cast<uint8_t>(c));
  EXPECT_EQ(sunk_, "0123456789");
  EXPECT_EQ(uart_.output_tail(), "6789");
}

TEST_F(SerialUartTest, WideAccessesAreSplitIntoBytesAndCounted) {
  const uint8_t lcr_mcr[2] = {0x03, kOut2};
  uart_.Write(kLcr, lcr_mcr, 0);
  EXPECT_EQ(In(kLcr), 0x03);
  EXPECT_EQ(In(kMcr), kOut2);
  uint8_t both[2] = {0, 0};
  uart_.Read(kLcr, both, 0);
  EXPECT_EQ(both[0], 0x03);
  EXPECT_EQ(both[1], kOut2);
  EXPECT_EQ(uart_.stats().bad_accesses, 2u);
}

TEST_F(SerialUartTest, WritesToStatusRegistersAreIgnoredAndCounted) {
  Out(kLsr, 0x00);
  Out(kMsr, 0x00);
  EXPECT_EQ(In(kLsr), 0x60);
  EXPECT_EQ(In(kMsr), 0xB0);
  EXPECT_EQ(uart_.stats().bad_accesses, 2u);
}

// The parts of Linux's autoconfig() and serial8250_do_startup() that decide the port type
// and its workarounds, in order.
TEST_F(SerialUartTest, LinuxProbeSequenceFindsA16550AWithoutBugs) {
  Out(kIer, 0);
  const int scratch2 = In(kIer) & 0x0F;
  Out(kIer, 0x0F);
  const int scratch3 = In(kIer) & 0x0F;
  Out(kIer, 0);
  EXPECT_EQ(scratch2, 0);
  EXPECT_EQ(scratch3, 0x0F);
  Out(kLcr, 0xBF);
  Out(kFcr, 0);  // the EFR write lands on FCR
  Out(kLcr, 0);
  Out(kFcr, 0x01);
  EXPECT_EQ(In(kIir) >> 6, 3);  // 16550A
  Out(kLcr, 0x80);
  EXPECT_NE(In(kIir), 0);  // no EFR (v1)
  Out(kLcr, 0xBF);
  EXPECT_NE(In(kIir), 0);  // no EFR (v2)
  Out(kLcr, 0x03);
  // Startup: clear FIFOs, drain, the LSR safety check, then OUT2 and the TXEN test.
  Out(kFcr, 0x07);
  Out(kFcr, 0x00);
  In(kLsr);
  In(kData);
  In(kIir);
  In(kMsr);
  EXPECT_NE(In(kLsr), 0xFF);
  Out(kMcr, 0x0B);  // DTR | RTS | OUT2
  Out(kIer, 0x02);
  const uint8_t lsr = In(kLsr);
  const uint8_t iir = In(kIir);
  Out(kIer, 0);
  EXPECT_FALSE((lsr & 0x40) && (iir & 0x01)) << "Linux would set UART_BUG_TXEN";
}

}  // namespace
}  // namespace pcivmm::devices
