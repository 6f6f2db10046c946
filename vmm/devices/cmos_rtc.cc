#include "vmm/devices/cmos_rtc.h"

#include <utility>

#include "absl/time/civil_time.h"
#include "vmm/base/log.h"

namespace pcivmm::devices {
namespace {

// Register indices (data sheet, "Address Map"); 0x32 is the century byte of the PC's CMOS
// (named by the FADT's CENTURY field, ACPI 6.4 5.2.9).
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kStatusA = 0x0A;
constexpr uint8_t kStatusB = 0x0B;
constexpr uint8_t kStatusC = 0x0C;
constexpr uint8_t kStatusD = 0x0D;
constexpr uint8_t kIndexMask = 0x7F;  // bit 7 of the index port gates NMI on a PC

// Slots of CmosRtc::TimeFields.
enum Slot { kSec, kMin, kHour, kMday, kMon, kYear, kCentury };

// The time registers, the slot each shows, and the values a write may set.
struct TimeRegister {
  uint8_t index;
  Slot slot;
  int min;
  int max;
};
constexpr TimeRegister kTimeRegisters[] = {
    {0x00, kSec, 0, 59}, {0x02, kMin, 0, 59},  {0x04, kHour, 0, 23},    {0x07, kMday, 1, 31},
    {0x08, kMon, 1, 12}, {0x09, kYear, 0, 99}, {0x32, kCentury, 0, 99},
};

const TimeRegister* FindTimeRegister(uint8_t index) {
  for (const TimeRegister& r : kTimeRegisters) {
    if (r.index == index) return &r;
  }
  return nullptr;
}

// Status A: UIP (bit 7, read-only) and the divider/rate bits. Power-on value: the 32.768 kHz
// time base (DV = 010) and a 1024 Hz periodic rate, as PC firmware leaves it.
constexpr uint8_t kUip = 0x80;
constexpr uint8_t kDividerMask = 0x70;
constexpr uint8_t kDividerNormal = 0x20;
constexpr uint8_t kStatusAReset = 0x26;
// Status B. Power-on value 0x02: 24-hour, BCD, no interrupts (Linux's rtc-cmos refuses
// 12-hour mode when it has an IRQ).
constexpr uint8_t kSet = 0x80;
constexpr uint8_t kUie = 0x10;
constexpr uint8_t kBinary = 0x04;  // DM
constexpr uint8_t k24Hour = 0x02;
constexpr uint8_t kStatusBReset = k24Hour;
// Status C: IRQF and the update-ended flag. Status D: VRT, "valid RAM and time".
constexpr uint8_t kIrqf = 0x80;
constexpr uint8_t kUf = 0x10;
constexpr uint8_t kVrt = 0x80;
constexpr uint8_t kPm = 0x80;  // hours register, 12-hour mode

// "UIP ... When UIP is a zero, the update cycle is not in progress and will not be for at
// least 244 us": the registers here change at each whole second, so UIP is raised in the
// 244 us before it. It is never stuck: at most 0.03% of the time.
constexpr absl::Duration kUipWindow = absl::Microseconds(244);

absl::CivilSecond ToCivil(const std::array<int, 7>& f) {
  // Normalises out-of-range combinations (31 February -> 3 March), as a guest that sets
  // them gets what it asked for plus the overflow.
  return absl::CivilSecond(f[kCentury] * 100 + f[kYear], f[kMon], f[kMday], f[kHour], f[kMin],
                           f[kSec]);
}

std::array<int, 7> FromCivil(const absl::CivilSecond& c) {
  const int year = static_cast<int>(c.year());
  return {c.second(), c.minute(), c.hour(), c.day(), c.month(), year % 100, year / 100};
}

// MC146818 day of week: Sunday = 1 ... Saturday = 7.
int RtcWeekday(const absl::CivilSecond& c) {
  switch (absl::GetWeekday(c)) {
    case absl::Weekday::sunday:
      return 1;
    case absl::Weekday::monday:
      return 2;
    case absl::Weekday::tuesday:
      return 3;
    case absl::Weekday::wednesday:
      return 4;
    case absl::Weekday::thursday:
      return 5;
    case absl::Weekday::friday:
      return 6;
    case absl::Weekday::saturday:
      return 7;
  }
  return 1;
}

}  // namespace

CmosRtc::CmosRtc(Clock clock) : clock_(std::move(clock)) {
  absl::MutexLock lock(&mu_);
  ram_[kStatusA] = kStatusAReset;
  ram_[kStatusB] = kStatusBReset;
  last_flags_second_ = absl::ToUnixSeconds(clock_());
}

void CmosRtc::Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  NoteWidth(offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) data[i] = ReadPort(offset + i);
}

void CmosRtc::Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  NoteWidth(offset, data.size());
  for (size_t i = 0; i < data.size(); ++i) WritePort(offset + i, data[i]);
}

// An 8-bit ISA device: a wider access is carried out as byte accesses to consecutive ports.
void CmosRtc::NoteWidth(uint64_t offset, size_t size) {
  if (size == 1) return;
  ++bad_accesses_;
  PCIVMM_LOG_GUEST("cmos: %d-byte access at +%d done as byte accesses", size, offset);
}

// The index port is write-only on a PC; reads return all-ones like an empty port.
uint8_t CmosRtc::ReadPort(uint64_t offset) { return offset == 1 ? ReadData() : 0xFF; }

void CmosRtc::WritePort(uint64_t offset, uint8_t value) {
  if (offset == 0) {
    index_ = value & kIndexMask;
  } else if (offset == 1) {
    WriteData(value);
  }
}

uint8_t CmosRtc::ReadData() {
  if (FindTimeRegister(index_) != nullptr || index_ == kDayOfWeek) return ReadTime(index_);
  switch (index_) {
    case kStatusA:
      return ReadStatusA();
    case kStatusC:
      return ReadStatusC();
    case kStatusD:
      return kVrt;
    default:
      return ram_[index_];
  }
}

void CmosRtc::WriteData(uint8_t value) {
  if (FindTimeRegister(index_) != nullptr) return WriteTime(index_, value);
  switch (index_) {
    case kDayOfWeek:
      return WriteDayOfWeek(value);
    case kStatusA:
      ram_[kStatusA] = value & static_cast<uint8_t>(~kUip);  // UIP is read-only
      return;
    case kStatusB:
      return WriteStatusB(value);
    case kStatusC:
    case kStatusD:
      return Reject("write to read-only status register", index_, value);
    default:
      ram_[index_] = value;
  }
}

uint8_t CmosRtc::ReadTime(uint8_t index) {
  const TimeFields f = CurrentFields();
  if (index == kDayOfWeek) return Encode(DayOfWeek(f));
  const TimeRegister* r = FindTimeRegister(index);
  return r->slot == kHour ? EncodeHour(f[kHour]) : Encode(f[r->slot]);
}

// A write replaces one field of the current time. With SET clear it takes effect at once
// (the clock runs on from it); with SET set it waits for SET to clear.
void CmosRtc::WriteTime(uint8_t index, uint8_t value) {
  const TimeRegister* r = FindTimeRegister(index);
  const int v = r->slot == kHour ? DecodeHour(value) : Decode(value);
  if (v < r->min || v > r->max) return Reject("invalid time value", index, value);
  TimeFields f = CurrentFields();
  f[r->slot] = v;
  if (set_bit()) {
    frozen_ = f;
  } else {
    Commit(f);
  }
}

void CmosRtc::WriteDayOfWeek(uint8_t value) {
  const int v = Decode(value);
  if (v < 1 || v > 7) return Reject("invalid day of week", kDayOfWeek, value);
  weekday_shift_ = ((v - RtcWeekday(ToCivil(CurrentFields()))) % 7 + 7) % 7;
}

uint8_t CmosRtc::ReadStatusA() const {
  const uint8_t a = ram_[kStatusA];
  if (set_bit() || (a & kDividerMask) != kDividerNormal) return a;  // no updates: no UIP
  const absl::Duration into_second = clock_() - absl::FromUnixSeconds(0);
  const bool uip = absl::Seconds(1) - (into_second % absl::Seconds(1)) <= kUipWindow;
  return uip ? static_cast<uint8_t>(a | kUip) : a;
}

// Register B: while SET is 1 the update cycle is inhibited, so the program can initialise the
// time without an update in the middle; setting SET also clears UIE.
void CmosRtc::WriteStatusB(uint8_t value) {
  const bool was_set = set_bit();
  const bool set = (value & kSet) != 0;
  if (set && !was_set) frozen_ = CurrentFields();
  if (!set && was_set) {
    Commit(*frozen_);
    frozen_.reset();
  }
  ram_[kStatusB] = set ? static_cast<uint8_t>(value & ~kUie) : value;
}

// Register C reads and clears the interrupt flags. UF is set by each update cycle (here:
// each change of the guest's second since the last read), whatever UIE says; IRQF is set
// when a flag is set whose interrupt is enabled.
uint8_t CmosRtc::ReadStatusC() {
  if (set_bit()) return 0;
  const int64_t second = absl::ToUnixSeconds(clock_() + offset_);
  const bool updated = second != last_flags_second_;
  last_flags_second_ = second;
  if (!updated) return 0;
  return static_cast<uint8_t>(kUf | (status_b(kUie) ? kIrqf : 0));
}

CmosRtc::TimeFields CmosRtc::CurrentFields() const {
  if (frozen_.has_value()) return *frozen_;
  return FromCivil(absl::ToCivilSecond(clock_() + offset_, absl::UTCTimeZone()));
}

// The guest's time becomes `fields` now: the offset is taken from the start of the host's
// current second, so the guest's seconds tick with the host's.
void CmosRtc::Commit(const TimeFields& fields) {
  const absl::Time guest = absl::FromCivil(ToCivil(fields), absl::UTCTimeZone());
  offset_ = guest - absl::FromUnixSeconds(absl::ToUnixSeconds(clock_()));
}

int CmosRtc::DayOfWeek(const TimeFields& fields) const {
  return (RtcWeekday(ToCivil(fields)) - 1 + weekday_shift_) % 7 + 1;
}

// Register B.DM selects binary or BCD for the time registers.
uint8_t CmosRtc::Encode(int value) const {
  const int v = value % 100;
  if (status_b(kBinary)) return static_cast<uint8_t>(v);
  return static_cast<uint8_t>((v / 10) << 4 | (v % 10));
}

// Returns -1 for a BCD value with a digit above 9.
int CmosRtc::Decode(uint8_t value) const {
  if (status_b(kBinary)) return value;
  const int tens = value >> 4;
  const int ones = value & 0x0F;
  return tens > 9 || ones > 9 ? -1 : tens * 10 + ones;
}

// 12-hour mode (B bit 1 clear): hours 1-12, bit 7 set for PM.
uint8_t CmosRtc::EncodeHour(int hour) const {
  if (status_b(k24Hour)) return Encode(hour);
  const int h12 = hour % 12 == 0 ? 12 : hour % 12;
  return static_cast<uint8_t>(Encode(h12) | (hour >= 12 ? kPm : 0));
}

int CmosRtc::DecodeHour(uint8_t value) const {
  if (status_b(k24Hour)) return Decode(value);
  const int h12 = Decode(value & static_cast<uint8_t>(~kPm));
  if (h12 < 1 || h12 > 12) return -1;
  return h12 % 12 + ((value & kPm) != 0 ? 12 : 0);
}

bool CmosRtc::status_b(uint8_t bit) const { return (ram_[kStatusB] & bit) != 0; }
bool CmosRtc::set_bit() const { return status_b(kSet); }

void CmosRtc::Reject(const char* what, uint8_t index, uint8_t value) {
  ++bad_accesses_;
  PCIVMM_LOG_GUEST("cmos: %s (register %#x, value %#x) ignored", what, index, value);
}

void CmosRtc::SetRamByte(uint8_t index, uint8_t value) {
  absl::MutexLock lock(&mu_);
  ram_[index & kIndexMask] = value;
}

uint64_t CmosRtc::bad_accesses() const {
  absl::MutexLock lock(&mu_);
  return bad_accesses_;
}

}  // namespace pcivmm::devices
