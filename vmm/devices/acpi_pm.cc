#include "vmm/devices/acpi_pm.h"

#include <algorithm>

#include "vmm/base/log.h"
#include "vmm/base/platform_layout.h"

namespace pcivmm::devices {
namespace {

// ACPI 6.4, Table 4.11 (PM1 Status) and Table 4.12 (PM1 Enable). The status bits that can
// raise the SCI have an enable bit at the same position: TMR (0), GBL (5), PWRBTN (8),
// SLPBTN (9), RTC (10). PM1_EN bit 14 is PCIEXP_WAKE_DIS (a wake control, not an SCI source).
constexpr uint16_t kSciSources = 0x0721;
constexpr uint16_t kEnableBits = kSciSources | 0x4000;

// Table 4.13 (PM1 Control). "SCI_EN: ... When set, power management events cause an SCI";
// with no SMI_CMD the hardware is always in ACPI mode, so it reads 1. GBL_RLS and SLP_EN are
// write-only and read 0; the reserved bits read 0.
constexpr uint16_t kSciEn = 1u << 0;
constexpr uint16_t kBmRld = 1u << 1;
constexpr int kSlpTypShift = 10;
constexpr uint16_t kSlpTypMask = 7u << kSlpTypShift;
constexpr uint16_t kSlpEn = 1u << 13;
constexpr uint16_t kControlStored = kBmRld | kSlpTypMask;

uint8_t ByteOf(uint32_t value, uint64_t index) {
  return index < 4 ? static_cast<uint8_t>(value >> (8 * index)) : uint8_t{0xFF};
}

}  // namespace

void AcpiPm1Event::Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  const uint32_t image = status_ | uint32_t{enable_} << 16;
  for (size_t i = 0; i < data.size(); ++i) data[i] = ByteOf(image, offset + i);
}

void AcpiPm1Event::Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) WriteByte(offset + i, data[i]);
  UpdateSci();
}

// PM1_STS bits are write-1-to-clear: a 1 clears the bit, a 0 leaves it (4.8.4.1.1). PM1_EN
// bits are read/write (4.8.4.1.2); reserved ones read 0.
void AcpiPm1Event::WriteByte(uint64_t offset, uint8_t value) {
  const int shift = 8 * static_cast<int>(offset % 2);
  const auto bits = static_cast<uint16_t>(value << shift);
  const auto lane = static_cast<uint16_t>(0xFF << shift);
  if (offset < 2) {
    status_ &= static_cast<uint16_t>(~bits);
  } else if (offset < 4) {
    enable_ = static_cast<uint16_t>((enable_ & ~lane) | (bits & kEnableBits));
  }
}

// The SCI is a level interrupt (active low and shareable on a PC, 4.8.3.4), asserted while
// any status bit with its enable bit set is set; the IrqLine takes care of the polarity.
void AcpiPm1Event::UpdateSci() {
  const bool level = (status_ & enable_ & kSciSources) != 0;
  if (level == sci_level_) return;
  sci_level_ = level;
  if (sci_ != nullptr) sci_->Set(level);
}

void AcpiPm1Event::PressPowerButton() {
  absl::MutexLock lock(&mu_);
  status_ |= kPwrBtn;
  UpdateSci();
}

uint16_t AcpiPm1Event::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

uint16_t AcpiPm1Event::enable() const {
  absl::MutexLock lock(&mu_);
  return enable_;
}

uint16_t AcpiPm1Control::Value() const { return control_ | kSciEn; }

void AcpiPm1Control::Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = ByteOf(Value(), offset + i);
}

// "SLP_EN: Setting this bit causes the system to sequence into the sleeping state associated
// with the SLP_TYPx fields programmed with the values from the \_Sx object" (Table 4.13).
// Linux writes SLP_TYPx first, then SLP_TYPx | SLP_EN (acpi_hw_legacy_sleep).
void AcpiPm1Control::Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) {
  uint16_t value = 0;
  {
    absl::MutexLock lock(&mu_);
    value = Value();
    for (size_t i = 0; i < data.size() && offset + i < kSize; ++i) {
      const int shift = 8 * static_cast<int>(offset + i);
      value = static_cast<uint16_t>((value & ~(0xFF << shift)) | data[i] << shift);
    }
    control_ = value & kControlStored;
  }
  if ((value & kSlpEn) == 0) return;
  const int sleep_type = (value & kSlpTypMask) >> kSlpTypShift;
  if (sleep_type != base::layout::kAcpiS5SlpTyp) {
    ignored_sleeps_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("acpi: sleep type %d requested; only S5 (%d) is supported, ignored",
                     sleep_type, base::layout::kAcpiS5SlpTyp);
    return;
  }
  power_offs_.fetch_add(1, std::memory_order_relaxed);
  if (power_off_) power_off_();
}

void AcpiResetRegister::Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) {
  std::fill(data.begin(), data.end(), uint8_t{0});
}

// Writing RESET_VALUE to the reset register resets the system (4.8.4.6; FADT RESET_REG and
// RESET_VALUE, 5.2.9). Linux writes exactly one byte (acpi_reset).
void AcpiResetRegister::Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) {
  if (offset == 0 && data.size() == 1 && data[0] == base::layout::kAcpiResetValue) {
    resets_.fetch_add(1, std::memory_order_relaxed);
    if (reset_) reset_();
    return;
  }
  bad_writes_.fetch_add(1, std::memory_order_relaxed);
  PCIVMM_LOG_GUEST("acpi: reset register: ignored %d-byte write of %#x at +%d (want %#x)",
                   data.size(), data.empty() ? 0 : data[0], offset, base::layout::kAcpiResetValue);
}

}  // namespace pcivmm::devices
