// A minimal i8042 (the PC's PS/2 keyboard controller) at layout::kI8042DataPort and
// layout::kI8042CommandPort: enough for Linux's i8042 probe to finish without waiting on
// timeouts, and for the keyboard-controller reset (Linux's "reboot=k": command 0xFE) to
// reach the VMM.
//
// Emulated: the status register (never busy; output buffer full only while a reply waits)
// and the controller commands a probe uses: read/write internal RAM, byte 0 being the
// command byte (0x20-0x3F, 0x60-0x7F); self-tests (0xAA -> 0x55; 0xAB, 0xA9 -> 0x00 "no
// error"); port disable/enable (0xAD/0xAE, 0xA7/0xA8, reflected in the command byte); output
// port read/write (0xD0/0xD1; writing bit 0 low resets); the echo of a byte as if from the
// keyboard or aux port (0xD2/0xD3, Linux's loopback test); pulse output lines (0xF0-0xFF: a
// clear bit 0 pulses the reset line).
//
// Not emulated: no keyboard or mouse is attached (bytes for them are dropped and counted, so a
// driver's device probe times out); no IRQ 1 or 12; no scan-code translation; no A20 gate
// (output-port bit 1 is stored only); no parity or timeout errors. Other commands are
// accepted, ignored, counted and logged. Linux still waits ~250 ms for an aux IRQ that never
// comes: boot with i8042.noaux (or leave the 8042 flag out of the FADT's IAPC_BOOT_ARCH, and
// Linux skips the probe; the 0xFE reset path works either way).
#ifndef PCIVMM_VMM_DEVICES_I8042_H_
#define PCIVMM_VMM_DEVICES_I8042_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "mmio/io_device.h"

namespace pcivmm::devices {

class I8042 {
 public:
  // `reset` is called on the writing vCPU's thread, outside the controller's lock.
  explicit I8042(std::function<void()> reset);

  // The two one-byte port devices to register; each keeps the controller alive.
  static std::shared_ptr<mmio::IoDevice> DataPort(std::shared_ptr<I8042> controller);
  static std::shared_ptr<mmio::IoDevice> CommandPort(std::shared_ptr<I8042> controller);

  uint8_t ReadData();
  uint8_t ReadStatus();
  void WriteData(uint8_t value);
  void WriteCommand(uint8_t command);

  uint64_t resets() const { return resets_.load(std::memory_order_relaxed); }
  uint64_t unknown_commands() const { return unknown_commands_.load(std::memory_order_relaxed); }
  // Bytes addressed to the (absent) keyboard or mouse.
  uint64_t dropped_device_bytes() const {
    return dropped_device_bytes_.load(std::memory_order_relaxed);
  }
  // Accesses wider than a byte (read as all-ones, writes dropped).
  uint64_t bad_accesses() const { return bad_accesses_.load(std::memory_order_relaxed); }
  void NoteBadAccess(uint16_t port, size_t size);

 private:
  bool Command(uint8_t command) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CommandParameter(uint8_t command, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetCommandByteBit(uint8_t bit, bool on) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reply(uint8_t value, bool from_aux = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PulseReset();

  const std::function<void()> reset_;
  absl::Mutex mu_;
  std::array<uint8_t, 32> ram_ ABSL_GUARDED_BY(mu_){};  // ram_[0]: the command byte
  uint8_t output_port_ ABSL_GUARDED_BY(mu_);
  std::optional<uint8_t> output_ ABSL_GUARDED_BY(mu_);  // the output buffer (port 0x60)
  bool output_from_aux_ ABSL_GUARDED_BY(mu_) = false;
  uint8_t last_output_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<uint8_t> pending_ ABSL_GUARDED_BY(mu_);  // command awaiting its data byte
  bool last_write_was_command_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> resets_{0};
  std::atomic<uint64_t> unknown_commands_{0};
  std::atomic<uint64_t> dropped_device_bytes_{0};
  std::atomic<uint64_t> bad_accesses_{0};
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_I8042_H_
