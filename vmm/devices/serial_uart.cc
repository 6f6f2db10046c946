#include "vmm/devices/serial_uart.h"

#include <utility>

#include "vmm/base/log.h"

namespace pcivmm::devices {
namespace {

// Register offsets (PC16550D data sheet, register summary table). With LCR.DLAB set,
// offsets 0 and 1 are the divisor latch (DLL, DLM) instead.
constexpr uint64_t kRbrThr = 0;
constexpr uint64_t kIer = 1;
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

// IER: bits 7:4 always read 0.
constexpr uint8_t kIerRxData = 0x01;  // ERBFI
constexpr uint8_t kIerThre = 0x02;    // ETBEI
constexpr uint8_t kIerRxLine = 0x04;  // ELSI
constexpr uint8_t kIerModem = 0x08;   // EDSSI
constexpr uint8_t kIerMask = 0x0F;

// IIR bits 3:0 (data sheet, "Interrupt Control Functions" table); bits 7:6 are set when
// FCR bit 0 enables the FIFOs; bits 5:4 are always 0.
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirRxLine = 0x06;     // priority 1: OE/PE/FE/BI; cleared by reading LSR
constexpr uint8_t kIirRxData = 0x04;     // priority 2: at the trigger level; reading RBR
constexpr uint8_t kIirRxTimeout = 0x0C;  // priority 2: below it, timed out; reading RBR
constexpr uint8_t kIirThre = 0x02;       // priority 3: reading IIR (if source) or writing THR
constexpr uint8_t kIirModem = 0x00;      // priority 4: reading MSR
constexpr uint8_t kIirFifosEnabled = 0xC0;

// FCR: bit 0 enables the FIFOs ("must be 1 when other FCR bits are written to or they will
// not be programmed"), bits 1 and 2 self-clear, bit 3 DMA mode, bits 7:6 RX trigger level.
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrStored = 0xC9;
constexpr size_t kRxTriggerLevels[4] = {1, 4, 8, 14};

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1F;  // "bits 5 through 7 are permanently set to logic 0"

constexpr uint8_t kLsrDr = 0x01;
constexpr uint8_t kLsrOe = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

// MSR bits 7:4 are the modem inputs; bits 3:0 latch their changes (DCTS, DDSR, TERI, DDCD).
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kPeerModemInputs = kMsrCts | kMsrDsr | kMsrDcd;

bool Has(uint8_t reg, uint8_t bits) { return (reg & bits) != 0; }
uint8_t Bits(bool on, uint8_t bits) { return on ? bits : uint8_t{0}; }

}  // namespace

SerialUart::SerialUart(IrqLine* irq, Sink sink, SerialUartOptions options)
    : irq_(irq), sink_(std::move(sink)), options_(options) {}

void SerialUart::Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  NoteWidth("read", offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = ReadRegister(offset + i);
  UpdateIrq();
}

void SerialUart::Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  NoteWidth("write", offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) WriteRegister(offset + i, data[i]);
  UpdateIrq();
}

// The UART sits on the 8-bit side of the ISA bus: a wider access is carried out as byte
// accesses to consecutive ports, which is what we do, noting it as unusual.
void SerialUart::NoteWidth(const char* what, uint64_t offset, size_t size) {
  if (size == 1) return;
  ++stats_.bad_accesses;
  PCIVMM_LOG_GUEST("serial: %d-byte %s at +%d done as byte accesses", size, what, offset);
}

uint8_t SerialUart::ReadRegister(uint64_t offset) {
  switch (offset) {
    case kRbrThr:
      return dlab() ? dll_ : ReadRbr();
    case kIer:
      return dlab() ? dlm_ : ier_;
    case kIirFcr:
      return ReadIir();
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr:
      return ReadLsr();
    case kMsr:
      return ReadMsr();
    case kScr:
      return scr_;
    default:
      ++stats_.bad_accesses;  // only reachable by a caller bypassing the bus's range check
      return 0xFF;
  }
}

void SerialUart::WriteRegister(uint64_t offset, uint8_t value) {
  switch (offset) {
    case kRbrThr:
      if (dlab()) {
        dll_ = value;
      } else {
        WriteThr(value);
      }
      return;
    case kIer:
      if (dlab()) {
        dlm_ = value;
      } else {
        WriteIer(value);
      }
      return;
    case kIirFcr:
      return WriteFcr(value);
    case kLcr:
      lcr_ = value;
      return;
    case kMcr:
      return WriteMcr(value);
    case kScr:
      scr_ = value;
      return;
    default:
      return IgnoreWrite(offset, value);
  }
}

// LSR and MSR are read-only (the data sheet reserves LSR writes for factory testing): writes
// are dropped and counted.
void SerialUart::IgnoreWrite(uint64_t offset, uint8_t value) {
  ++stats_.bad_accesses;
  PCIVMM_LOG_GUEST("serial: ignored write of %#x to read-only register +%d", value, offset);
}

uint8_t SerialUart::ReadRbr() {
  if (!rx_.empty()) {
    rbr_ = rx_.front();
    rx_.pop_front();
  }
  return rbr_;
}

uint8_t SerialUart::IirValue() const {
  return static_cast<uint8_t>(InterruptId() | Bits(fifo_enabled(), kIirFifosEnabled));
}

// Interrupt Control Functions: THRE is reset by reading IIR if it is the interrupt's source,
// i.e. only when THRE is the highest-priority interrupt at the time of the read.
uint8_t SerialUart::ReadIir() {
  const uint8_t iir = IirValue();
  if ((iir & 0x0F) == kIirThre) thre_pending_ = false;
  return iir;
}

// Reading LSR clears the error bits (and so the receiver line status interrupt). THRE and
// TEMT are always set: transmission is instant.
uint8_t SerialUart::ReadLsr() {
  const auto lsr =
      static_cast<uint8_t>(kLsrThre | kLsrTemt | lsr_errors_ | Bits(!rx_.empty(), kLsrDr));
  lsr_errors_ = 0;
  return lsr;
}

uint8_t SerialUart::ReadMsr() {
  const uint8_t msr = ModemInputs() | msr_deltas_;
  msr_deltas_ = 0;
  return msr;
}

// Writing THR clears the THRE interrupt; the byte leaves at once, THR is empty again, and with
// ETBEI set the THRE interrupt is raised anew, as after every transmitted character.
void SerialUart::WriteThr(uint8_t value) {
  ++stats_.tx_bytes;
  if (Has(mcr_, kMcrLoop)) {
    PushRx(value);  // loopback: the transmitter feeds the receiver, nothing leaves
  } else {
    Output(value);
  }
  thre_pending_ = Has(ier_, kIerThre);
}

// Setting ETBEI while THR is empty (always, here) raises the THRE interrupt: Linux's
// serial8250_do_startup tests that it is raised again after IER is cleared and rewritten.
void SerialUart::WriteIer(uint8_t value) {
  const bool thre_was_enabled = Has(ier_, kIerThre);
  ier_ = value & kIerMask;
  const bool thre_enabled = Has(ier_, kIerThre);
  if (thre_enabled != thre_was_enabled) thre_pending_ = thre_enabled;
}

// Changing FCR bit 0 switches between FIFO and 16450 mode and clears the FIFOs.
void SerialUart::WriteFcr(uint8_t value) {
  const bool enable = Has(value, kFcrEnable);
  if (enable != fifo_enabled()) rx_.clear();
  if (!enable) {
    fcr_ = 0;
    return;
  }
  if (Has(value, kFcrClearRx)) rx_.clear();
  fcr_ = value & kFcrStored;
}

// Changes of the modem inputs latch MSR bits 3:0: DCTS, DDSR and DDCD on any change, TERI
// when RI goes from on to off.
void SerialUart::WriteMcr(uint8_t value) {
  const uint8_t before = ModemInputs();
  mcr_ = value & kMcrMask;
  const uint8_t after = ModemInputs();
  const uint8_t changed = (before ^ after) & (kMsrCts | kMsrDsr | kMsrDcd);
  const uint8_t ri_off = before & static_cast<uint8_t>(~after) & kMsrRi;
  msr_deltas_ |= static_cast<uint8_t>((changed | ri_off) >> 4);
}

// "In the diagnostic mode ... the four MODEM Control outputs (DTR, RTS, OUT 1, and OUT 2) are
// internally connected to the four MODEM Control inputs" (DSR, CTS, RI, DCD respectively).
uint8_t SerialUart::ModemInputs() const {
  if (!Has(mcr_, kMcrLoop)) return kPeerModemInputs;
  return static_cast<uint8_t>(
      Bits(Has(mcr_, kMcrDtr), kMsrDsr) | Bits(Has(mcr_, kMcrRts), kMsrCts) |
      Bits(Has(mcr_, kMcrOut1), kMsrRi) | Bits(Has(mcr_, kMcrOut2), kMsrDcd));
}

// The highest-priority pending interrupt among the enabled ones (Interrupt Control Functions).
uint8_t SerialUart::InterruptId() const {
  if (Has(ier_, kIerRxLine) && lsr_errors_ != 0) return kIirRxLine;
  if (Has(ier_, kIerRxData) && !rx_.empty()) {
    return rx_.size() >= RxTriggerLevel() ? kIirRxData : kIirRxTimeout;
  }
  if (Has(ier_, kIerThre) && thre_pending_) return kIirThre;
  if (Has(ier_, kIerModem) && msr_deltas_ != 0) return kIirModem;
  return kIirNone;
}

size_t SerialUart::RxTriggerLevel() const {
  return fifo_enabled() ? kRxTriggerLevels[fcr_ >> 6] : 1;
}

bool SerialUart::fifo_enabled() const { return Has(fcr_, kFcrEnable); }
bool SerialUart::dlab() const { return Has(lcr_, kLcrDlab); }

bool SerialUart::PushRx(uint8_t byte) {
  if (rx_.size() >= options_.rx_fifo_bytes) {
    lsr_errors_ |= kLsrOe;  // "the character in the shift register is overwritten"
    ++stats_.rx_dropped;
    return false;
  }
  rx_.push_back(byte);
  return true;
}

void SerialUart::Output(uint8_t byte) {
  const char c = static_cast<char>(byte);
  const size_t keep = options_.output_tail_bytes;
  if (keep > 0) {
    tail_.push_back(c);
    if (tail_.size() >= 2 * keep) tail_.erase(0, tail_.size() - keep);  // amortised O(1)
  }
  if (sink_) sink_(std::string_view(&c, 1));
}

// PC wiring: INTR reaches the interrupt controller through a buffer enabled by OUT2. In
// loopback "the MODEM Control output pins are forced to their inactive state", so the
// interrupt is gated off there as well.
void SerialUart::UpdateIrq() {
  const bool level = InterruptId() != kIirNone && (mcr_ & (kMcrOut2 | kMcrLoop)) == kMcrOut2;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_ != nullptr) irq_->Set(level);
}

size_t SerialUart::Receive(std::string_view bytes) {
  absl::MutexLock lock(&mu_);
  size_t queued = 0;
  if (Has(mcr_, kMcrLoop)) {
    stats_.rx_dropped += bytes.size();  // "the receiver Serial Input is disconnected"
    return 0;
  }
  for (const char c : bytes) queued += PushRx(static_cast<uint8_t>(c)) ? 1 : 0;
  stats_.rx_bytes += queued;
  UpdateIrq();
  return queued;
}

size_t SerialUart::rx_space() const {
  absl::MutexLock lock(&mu_);
  return options_.rx_fifo_bytes - rx_.size();
}

std::string SerialUart::output_tail() const {
  absl::MutexLock lock(&mu_);
  const size_t keep = options_.output_tail_bytes;
  return tail_.size() > keep ? tail_.substr(tail_.size() - keep) : tail_;
}

SerialUartStats SerialUart::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

uint8_t SerialUart::PeekIir() const {
  absl::MutexLock lock(&mu_);
  return IirValue();
}

}  // namespace pcivmm::devices
