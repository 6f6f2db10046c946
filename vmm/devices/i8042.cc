#include "vmm/devices/i8042.h"

#include <algorithm>
#include <utility>

#include "vmm/base/log.h"
#include "vmm/base/platform_layout.h"

namespace pcivmm::devices {
namespace {

// Status register bits (read from the command port).
constexpr uint8_t kStatusOutputFull = 0x01;  // a byte waits at the data port
constexpr uint8_t kStatusSystemFlag = 0x04;  // copy of the command byte's system flag
constexpr uint8_t kStatusCommand = 0x08;     // the last write went to the command port
constexpr uint8_t kStatusUnlocked = 0x10;    // keyboard not inhibited
constexpr uint8_t kStatusAuxData = 0x20;     // the waiting byte came from the aux port
// The input-buffer-full bit (0x02) is never set: every write is taken at once.

// Command byte (internal RAM byte 0) bits.
constexpr uint8_t kCtrKbdInt = 0x01;
constexpr uint8_t kCtrSystemFlag = 0x04;
constexpr uint8_t kCtrKbdDisable = 0x10;
constexpr uint8_t kCtrAuxDisable = 0x20;
constexpr uint8_t kCtrTranslate = 0x40;
// As PC firmware hands it over: POST passed, keyboard interrupt on, translation on.
constexpr uint8_t kCtrReset = kCtrSystemFlag | kCtrKbdInt | kCtrTranslate;

// Output port: bit 0 drives the CPU reset line (active low), bit 1 the A20 gate.
constexpr uint8_t kOutputPortReset = 0x01;
constexpr uint8_t kOutputPortA20 = 0x02;

// Controller commands (written to the command port).
constexpr uint8_t kReadRamFirst = 0x20;   // 0x20-0x3F: read RAM byte (cmd & 0x1F)
constexpr uint8_t kWriteRamFirst = 0x60;  // 0x60-0x7F: write RAM byte; data follows
constexpr uint8_t kAuxDisable = 0xA7;
constexpr uint8_t kAuxEnable = 0xA8;
constexpr uint8_t kAuxTest = 0xA9;
constexpr uint8_t kSelfTest = 0xAA;
constexpr uint8_t kKbdTest = 0xAB;
constexpr uint8_t kKbdDisable = 0xAD;
constexpr uint8_t kKbdEnable = 0xAE;
constexpr uint8_t kReadOutputPort = 0xD0;
constexpr uint8_t kWriteOutputPort = 0xD1;  // data follows
constexpr uint8_t kWriteKbdBuffer = 0xD2;   // data follows, echoed as keyboard data
constexpr uint8_t kWriteAuxBuffer = 0xD3;   // data follows, echoed as aux data
constexpr uint8_t kWriteAuxDevice = 0xD4;   // data follows, sent to the mouse
constexpr uint8_t kPulseFirst = 0xF0;       // 0xF0-0xFF: pulse output bits 3:0 that are 0
constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;

bool TakesParameter(uint8_t command) {
  return (command >= kWriteRamFirst && command < kWriteRamFirst + 0x20) ||
         (command >= kWriteOutputPort && command <= kWriteAuxDevice);
}

// One of the controller's two ports as a bus device.
class I8042Port : public mmio::IoDevice {
 public:
  I8042Port(std::shared_ptr<I8042> controller, bool command)
      : controller_(std::move(controller)), command_(command) {}
  std::string_view Name() const override { return command_ ? "i8042-command" : "i8042-data"; }

  void Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) override {
    std::fill(data.begin(), data.end(), uint8_t{0xFF});
    if (data.size() != 1) return controller_->NoteBadAccess(port(), data.size());
    data[0] = command_ ? controller_->ReadStatus() : controller_->ReadData();
  }
  void Write(uint64_t /*offset*/, absl::Span<const uint8_t> data, int /*vcpu*/) override {
    if (data.size() != 1) return controller_->NoteBadAccess(port(), data.size());
    if (command_) {
      controller_->WriteCommand(data[0]);
    } else {
      controller_->WriteData(data[0]);
    }
  }

 private:
  uint16_t port() const {
    return command_ ? base::layout::kI8042CommandPort : base::layout::kI8042DataPort;
  }
  const std::shared_ptr<I8042> controller_;
  const bool command_;
};

}  // namespace

I8042::I8042(std::function<void()> reset) : reset_(std::move(reset)) {
  absl::MutexLock lock(&mu_);
  ram_[0] = kCtrReset;
  output_port_ = kOutputPortReset | kOutputPortA20;
}

std::shared_ptr<mmio::IoDevice> I8042::DataPort(std::shared_ptr<I8042> controller) {
  return std::make_shared<I8042Port>(std::move(controller), /*command=*/false);
}

std::shared_ptr<mmio::IoDevice> I8042::CommandPort(std::shared_ptr<I8042> controller) {
  return std::make_shared<I8042Port>(std::move(controller), /*command=*/true);
}

// Reading the data port takes the waiting byte; with none, the last one is read again.
uint8_t I8042::ReadData() {
  absl::MutexLock lock(&mu_);
  if (output_.has_value()) {
    last_output_ = *output_;
    output_.reset();
  }
  return last_output_;
}

uint8_t I8042::ReadStatus() {
  absl::MutexLock lock(&mu_);
  uint8_t status = kStatusUnlocked;
  if ((ram_[0] & kCtrSystemFlag) != 0) status |= kStatusSystemFlag;
  if (last_write_was_command_) status |= kStatusCommand;
  if (output_.has_value()) status |= kStatusOutputFull;
  if (output_.has_value() && output_from_aux_) status |= kStatusAuxData;
  return status;
}

void I8042::WriteCommand(uint8_t command) {
  bool reset = false;
  {
    absl::MutexLock lock(&mu_);
    last_write_was_command_ = true;
    pending_.reset();  // a new command abandons one still waiting for its data byte
    reset = Command(command);
  }
  if (reset) PulseReset();
}

// A data byte completes a pending command; otherwise it is meant for the keyboard.
void I8042::WriteData(uint8_t value) {
  bool reset = false;
  {
    absl::MutexLock lock(&mu_);
    last_write_was_command_ = false;
    if (!pending_.has_value()) {
      dropped_device_bytes_.fetch_add(1, std::memory_order_relaxed);  // no keyboard attached
      return;
    }
    const uint8_t command = *pending_;
    pending_.reset();
    reset = CommandParameter(command, value);
  }
  if (reset) PulseReset();
}

// Returns true when the command pulses the reset line.
bool I8042::Command(uint8_t command) {
  if (command >= kReadRamFirst && command < kReadRamFirst + 0x20) {
    Reply(ram_[command & 0x1F]);
  } else if (TakesParameter(command)) {
    pending_ = command;
  } else if (command >= kPulseFirst) {
    return (command & kOutputPortReset) == 0;  // 0xFE: "pulse reset line"; 0xFF pulses none
  } else if (command == kAuxDisable || command == kAuxEnable) {
    SetCommandByteBit(kCtrAuxDisable, command == kAuxDisable);
  } else if (command == kKbdDisable || command == kKbdEnable) {
    SetCommandByteBit(kCtrKbdDisable, command == kKbdDisable);
  } else if (command == kSelfTest) {
    Reply(kSelfTestPassed);
  } else if (command == kKbdTest || command == kAuxTest) {
    Reply(kInterfaceOk);
  } else if (command == kReadOutputPort) {
    Reply(output_port_);
  } else {
    unknown_commands_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("i8042: command %#x not emulated, ignored", command);
  }
  return false;
}

// Returns true when the parameter pulls the output port's reset bit low.
bool I8042::CommandParameter(uint8_t command, uint8_t value) {
  switch (command) {
    case kWriteOutputPort:
      output_port_ = value;
      return (value & kOutputPortReset) == 0;
    case kWriteKbdBuffer:
      Reply(value);
      return false;
    case kWriteAuxBuffer:
      Reply(value, /*from_aux=*/true);
      return false;
    case kWriteAuxDevice:
      dropped_device_bytes_.fetch_add(1, std::memory_order_relaxed);  // no mouse attached
      return false;
    default:
      ram_[command & 0x1F] = value;  // 0x60-0x7F
      return false;
  }
}

void I8042::SetCommandByteBit(uint8_t bit, bool on) {
  ram_[0] = on ? static_cast<uint8_t>(ram_[0] | bit) : static_cast<uint8_t>(ram_[0] & ~bit);
}

void I8042::Reply(uint8_t value, bool from_aux) {
  output_ = value;
  output_from_aux_ = from_aux;
}

void I8042::PulseReset() {
  resets_.fetch_add(1, std::memory_order_relaxed);
  if (reset_) reset_();
}

void I8042::NoteBadAccess(uint16_t port, size_t size) {
  bad_accesses_.fetch_add(1, std::memory_order_relaxed);
  PCIVMM_LOG_GUEST("i8042: %d-byte access to port %#x ignored", size, port);
}

}  // namespace pcivmm::devices
