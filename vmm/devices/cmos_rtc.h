// The PC's CMOS RAM and real-time clock (Motorola MC146818A, "the data sheet" below): index
// port layout::kCmosPort (bit 7 = NMI disable, ignored) and data port layout::kCmosPort + 1,
// one device over both.
//
// The clock is the host's UTC clock plus an offset: writes to the time registers are kept
// as that offset (so the guest's clock runs on from what it set), and while status B.SET is
// set the time is frozen so that a multi-register update is applied at once when SET clears.
// Not emulated: interrupts (IRQ 8: periodic, alarm, update-ended), the square-wave output,
// daylight saving (B.DSE); the alarm registers are plain storage. Day of week is derived
// from the date; a write to it is kept as a fixed shift.
#ifndef PCIVMM_VMM_DEVICES_CMOS_RTC_H_
#define PCIVMM_VMM_DEVICES_CMOS_RTC_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "mmio/io_device.h"

namespace pcivmm::devices {

class CmosRtc : public mmio::IoDevice {
 public:
  static constexpr uint64_t kPortCount = 2;  // index, data
  static constexpr int kRamBytes = 128;
  using Clock = std::function<absl::Time()>;

  explicit CmosRtc(Clock clock = absl::Now);

  std::string_view Name() const override { return "cmos-rtc"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  // Host-side setup of a plain CMOS RAM byte (the firmware's role, e.g. memory sizes).
  void SetRamByte(uint8_t index, uint8_t value);
  // Accesses wider than a byte, invalid time values, writes to read-only registers.
  uint64_t bad_accesses() const;

 private:
  // Seconds, minutes, hours (0-23), day of month, month, year within the century, century.
  using TimeFields = std::array<int, 7>;

  void NoteWidth(uint64_t offset, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadPort(uint64_t offset) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WritePort(uint64_t offset, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadData() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteData(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadTime(uint8_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteTime(uint8_t index, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteDayOfWeek(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadStatusA() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteStatusB(uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t ReadStatusC() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  TimeFields CurrentFields() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Commit(const TimeFields& fields) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int DayOfWeek(const TimeFields& fields) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t Encode(int value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Decode(uint8_t value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint8_t EncodeHour(int hour) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int DecodeHour(uint8_t value) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool status_b(uint8_t bit) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool set_bit() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Reject(const char* what, uint8_t index, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock clock_;
  mutable absl::Mutex mu_;
  uint8_t index_ ABSL_GUARDED_BY(mu_) = 0;
  std::array<uint8_t, kRamBytes> ram_ ABSL_GUARDED_BY(mu_){};
  absl::Duration offset_ ABSL_GUARDED_BY(mu_);             // guest time - host time, whole seconds
  int weekday_shift_ ABSL_GUARDED_BY(mu_) = 0;             // 0..6, from writes to the day of week
  std::optional<TimeFields> frozen_ ABSL_GUARDED_BY(mu_);  // the time while B.SET is set
  int64_t last_flags_second_ ABSL_GUARDED_BY(mu_);         // guest second of the last C read
  uint64_t bad_accesses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_CMOS_RTC_H_
