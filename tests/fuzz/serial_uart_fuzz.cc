// Fuzzes the 16550A UART: any sequence of register reads and writes (byte and wider), host
// input and FIFO settings must keep IIR a valid encoding and the IRQ line equal to
// "an interrupt is pending && OUT2 && not in loopback", changed only when it changes.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mmio/io_bytes.h"
#include "tests/fuzz/fuzz_input.h"
#include "vmm/devices/fake_irq_line.h"
#include "vmm/devices/serial_uart.h"

namespace pcivmm::fuzz {
namespace {

bool ValidInterruptId(uint8_t id) {
  return id == 0x1 || id == 0x6 || id == 0x4 || id == 0xC || id == 0x2 || id == 0x0;
}

void CheckIir(uint8_t iir) {
  Check(ValidInterruptId(iir & 0x0F), "IIR bits 3:0 are a data-sheet encoding");
  Check((iir & 0x30) == 0, "IIR bits 5:4 are 0");
  Check((iir & 0xC0) == 0 || (iir & 0xC0) == 0xC0, "IIR bits 7:6 are both set or clear");
  Check((iir & 0x0F) != 0xC || (iir & 0xC0) == 0xC0, "character timeout only in FIFO mode");
}

// Register reads with side effects are checked when the input performs them.
void CheckRead(uint64_t offset, uint8_t value, uint8_t lcr) {
  if (offset == 2) CheckIir(value);
  if (offset == 1 && !(lcr & 0x80)) Check((value & 0xF0) == 0, "IER bits 7:4 are 0");
  if (offset == 4) Check((value & 0xE0) == 0, "MCR bits 7:5 are 0");
  if (offset == 5) Check((value & 0xE0) == 0x60, "LSR: THRE and TEMT set, no FIFO error");
}

void CheckState(devices::SerialUart& uart, const devices::testing::FakeIrqLine& irq) {
  const uint8_t iir = uart.PeekIir();
  CheckIir(iir);
  const uint8_t mcr = mmio::ReadByte(uart, 4);
  const bool pending = (iir & 0x01) == 0;
  const bool gated_on = (mcr & 0x08) != 0 && (mcr & 0x10) == 0;
  Check(irq.level() == (pending && gated_on), "IRQ level == pending && OUT2 && !loop");
  Check(irq.redundant_sets() == 0, "the IRQ line is only set when its level changes");
  Check(uart.output_tail().size() <= 16, "output tail is bounded");
  Check(uart.rx_space() <= 32, "RX FIFO is bounded");
}

void Access(devices::SerialUart& uart, FuzzInput& in, uint8_t op) {
  const size_t width = size_t{1} << ((op >> 5) % 3);  // 1, 2, 4
  const uint64_t offset = std::min<uint64_t>(op & 7, 8 - width);
  uint8_t buf[4] = {0, 0, 0, 0};
  const uint8_t lcr = mmio::ReadByte(uart, 3);
  if (op & 0x08) {
    for (size_t i = 0; i < width; ++i) buf[i] = in.U8();
    uart.Write(offset, absl::MakeConstSpan(buf, width), 0);
    return;
  }
  uart.Read(offset, absl::MakeSpan(buf, width), 0);
  if (width == 1) CheckRead(offset, buf[0], lcr);
}

}  // namespace
}  // namespace pcivmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  devices::testing::FakeIrqLine irq;
  size_t sunk = 0;
  devices::SerialUart uart(&irq, [&sunk](std::string_view s) { sunk += s.size(); },
                           {.rx_fifo_bytes = 32, .output_tail_bytes = 16});
  fuzz::FuzzInput in(data, size);
  while (!in.empty()) {
    const uint8_t op = in.U8();
    if ((op & 0x18) == 0x18 && (op & 0x80)) {
      std::string bytes(op & 0x07, '\0');  // host input of 0..7 bytes
      for (char& c : bytes) c = static_cast<char>(in.U8());
      uart.Receive(bytes);
    } else {
      fuzz::Access(uart, in, op);
    }
    fuzz::CheckState(uart, irq);
  }
  fuzz::Check(sunk <= uart.stats().tx_bytes, "the sink sees only transmitted bytes");
  return 0;
}
