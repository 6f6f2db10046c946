// ACPI fixed hardware (ACPI 6.4, 4.8.4) for the FADT: the PM1a event block, the PM1a control
// block and the reset register, each a small device on its own port range
// (layout::kAcpiPm1aEvtPort, kAcpiPm1aCntPort, kAcpiResetPort). The platform has no SMM
// (FADT SMI_CMD = 0), so the OS finds it in ACPI mode: SCI_EN reads 1 and cannot be cleared.
// Not emulated: PM1b blocks, PM2, the PM timer, GPE blocks, sleeping states other than S5.
#ifndef PCIVMM_VMM_DEVICES_ACPI_PM_H_
#define PCIVMM_VMM_DEVICES_ACPI_PM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "mmio/io_device.h"
#include "vmm/devices/irq_line.h"

namespace pcivmm::devices {

// PM1a_EVT_BLK (4.8.4.1): PM1_STS at +0 and PM1_EN at +2, 16 bits each, any access width.
class AcpiPm1Event : public mmio::IoDevice {
 public:
  static constexpr uint64_t kSize = 4;          // FADT PM1_EVT_LEN
  static constexpr uint16_t kPwrBtn = 1u << 8;  // PWRBTN_STS in PM1_STS, PWRBTN_EN in PM1_EN

  // `sci` (may be null) drives the SCI (layout::kAcpiSciIrq, level: asserted while an
  // enabled status bit is set) and must outlive this device.
  explicit AcpiPm1Event(IrqLine* sci = nullptr) : sci_(sci) {}

  std::string_view Name() const override { return "acpi-pm1a-event"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  // The fixed power button (4.8.3.1.1.1) is pressed: PWRBTN_STS is set, and with PWRBTN_EN
  // the SCI is raised. A guest with an ACPI button driver then shuts down (S5). Needs FADT
  // flags PWR_BUTTON = 0 (fixed-feature button) and the SCI wired.
  void PressPowerButton();
  uint16_t status() const;
  uint16_t enable() const;

 private:
  void WriteByte(uint64_t offset, uint8_t value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateSci() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  IrqLine* const sci_;
  mutable absl::Mutex mu_;
  uint16_t status_ ABSL_GUARDED_BY(mu_) = 0;
  uint16_t enable_ ABSL_GUARDED_BY(mu_) = 0;
  bool sci_level_ ABSL_GUARDED_BY(mu_) = false;
};

// PM1a_CNT_BLK (4.8.4.2.1): SCI_EN (bit 0), BM_RLD (1), GBL_RLS (2), SLP_TYPx (12:10) and
// SLP_EN (13). Writing SLP_EN with SLP_TYPx == layout::kAcpiS5SlpTyp calls `power_off` on the
// writing vCPU's thread (outside the device's lock); other sleep types are counted and ignored.
class AcpiPm1Control : public mmio::IoDevice {
 public:
  static constexpr uint64_t kSize = 2;  // FADT PM1_CNT_LEN

  explicit AcpiPm1Control(std::function<void()> power_off) : power_off_(std::move(power_off)) {}

  std::string_view Name() const override { return "acpi-pm1a-control"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  uint64_t power_offs() const { return power_offs_.load(std::memory_order_relaxed); }
  uint64_t ignored_sleeps() const { return ignored_sleeps_.load(std::memory_order_relaxed); }

 private:
  uint16_t Value() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<void()> power_off_;
  mutable absl::Mutex mu_;
  uint16_t control_ ABSL_GUARDED_BY(mu_) = 0;  // the read/write bits: BM_RLD, SLP_TYPx
  std::atomic<uint64_t> power_offs_{0};
  std::atomic<uint64_t> ignored_sleeps_{0};
};

// The FADT RESET_REG (4.8.4.6): one byte; writing layout::kAcpiResetValue calls `reset` on
// the writing vCPU's thread. Reads return 0. The FADT must describe it as 8 bits wide in
// system I/O space with RESET_REG_SUP set.
class AcpiResetRegister : public mmio::IoDevice {
 public:
  static constexpr uint64_t kSize = 1;

  explicit AcpiResetRegister(std::function<void()> reset) : reset_(std::move(reset)) {}

  std::string_view Name() const override { return "acpi-reset"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

  uint64_t resets() const { return resets_.load(std::memory_order_relaxed); }
  uint64_t bad_writes() const { return bad_writes_.load(std::memory_order_relaxed); }

 private:
  const std::function<void()> reset_;
  std::atomic<uint64_t> resets_{0};
  std::atomic<uint64_t> bad_writes_{0};
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_ACPI_PM_H_
