// A 16550A UART (the PC's COM1: layout::kCom1Port, 8 ports, IRQ layout::kCom1Irq), enough for
// Linux's 8250 driver to detect a 16550A, run its console and take input.
//
// Registers and interrupts follow the National Semiconductor PC16550D data sheet ("the data
// sheet" below). What is simplified, and why it is invisible to a driver:
// - Transmission is instant: THR and the transmitter are always empty (LSR.THRE and LSR.TEMT
//   read 1), so a THR write is output at once and the THRE interrupt is raised again.
// - No baud clock: DLL/DLM and LCR are stored and read back but change nothing, and the
//   character timeout (IIR 0xC) is taken to have elapsed as soon as the RX FIFO holds fewer
//   bytes than the trigger level.
// - The RX FIFO is a host-side queue of SerialUartOptions::rx_fifo_bytes (in 16450 mode too);
//   bytes that do not fit are dropped, counted and reported to the guest as an overrun
//   (LSR.OE). Parity, framing and break errors never happen.
// - The modem inputs read as a connected peer (CTS, DSR, DCD asserted) except in loopback.
// The IRQ line's level is "an enabled interrupt is pending && MCR.OUT2 && !MCR.LOOP" (OUT2
// gates INTR on a PC; loopback forces OUT2 inactive); IrqLine::Set is called only on change.
#ifndef PCIVMM_VMM_DEVICES_SERIAL_UART_H_
#define PCIVMM_VMM_DEVICES_SERIAL_UART_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "mmio/io_device.h"
#include "vmm/devices/irq_line.h"

namespace pcivmm::devices {

struct SerialUartOptions {
  size_t rx_fifo_bytes = 4096;                   // host input queued for the guest
  size_t output_tail_bytes = size_t{64} * 1024;  // last output kept for output_tail()
};

struct SerialUartStats {
  uint64_t tx_bytes = 0;      // bytes the guest transmitted (loopback included)
  uint64_t rx_bytes = 0;      // bytes queued for the guest by Receive()
  uint64_t rx_dropped = 0;    // bytes lost: RX FIFO full, or input while in loopback
  uint64_t bad_accesses = 0;  // wider than a byte, or writes to read-only registers
};

class SerialUart : public mmio::IoDevice {
 public:
  static constexpr uint64_t kPortCount = 8;

  // Called with each transmitted byte, on the writing vCPU's thread, under the UART's lock
  // (so output stays in order): it must not block for long or call back into the UART.
  using Sink = std::function<void(std::string_view)>;

  // `irq` (may be null: no interrupt wired) must outlive the UART.
  SerialUart(IrqLine* irq, Sink sink, SerialUartOptions options = {});

  std::string_view Name() const override { return "serial-16550a"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  // Host input (console stdin, tests): queues as many bytes as fit in the RX FIFO, drops and
  // counts the rest, and raises the receive interrupts. Returns the number queued.
  size_t Receive(std::string_view bytes);
  size_t rx_space() const;

  // The last SerialUartOptions::output_tail_bytes bytes the guest transmitted.
  std::string output_tail() const;
  SerialUartStats stats() const;
  // IIR as the guest would read it, without the read's side effect (tests, fuzz invariants).
  uint8_t PeekIir() const;

 private:
  void NoteWidth(const char* what, uint64_t offset, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadRegister(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteRegister(uint64_t offset, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadRbr() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadIir() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadLsr() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadMsr() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteThr(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteIer(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteFcr(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteMcr(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IgnoreWrite(uint64_t offset, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PushRx(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Output(uint8_t byte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ModemInputs() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t InterruptId() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t IirValue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RxTriggerLevel() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool fifo_enabled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool dlab() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateIrq() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  IrqLine* const irq_;
  const Sink sink_;
  const SerialUartOptions options_;

  mutable absl::Mutex mu_;
  uint8_t ier_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t fcr_ ABSL_GUARDED_BY(mu_) = 0;  // FIFO enable, DMA mode and RX trigger bits
  uint8_t lcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t mcr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t scr_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t dll_ ABSL_GUARDED_BY(mu_) = 12;  // 9600 baud from the PC's 1.8432 MHz clock
  uint8_t dlm_ ABSL_GUARDED_BY(mu_) = 0;
  uint8_t rbr_ ABSL_GUARDED_BY(mu_) = 0;         // last byte read (an empty RBR repeats it)
  uint8_t lsr_errors_ ABSL_GUARDED_BY(mu_) = 0;  // OE, latched until LSR is read
  uint8_t msr_deltas_ ABSL_GUARDED_BY(mu_) = 0;  // MSR bits 3:0, latched until MSR is read
  bool thre_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool irq_level_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<uint8_t> rx_ ABSL_GUARDED_BY(mu_);
  std::string tail_ ABSL_GUARDED_BY(mu_);
  SerialUartStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_SERIAL_UART_H_
