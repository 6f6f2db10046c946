#include "vmm/devices/acpi_pm.h"

#include "gtest/gtest.h"
#include "mmio/io_bytes.h"
#include "vmm/base/platform_layout.h"
#include "vmm/devices/fake_irq_line.h"

namespace pcivmm::devices {
namespace {

uint16_t Read16(mmio::IoDevice& d, uint64_t offset) {
  uint8_t b[2] = {0, 0};
  d.Read(offset, b, 0);
  return static_cast<uint16_t>(b[0] | b[1] << 8);
}

void Write16(mmio::IoDevice& d, uint64_t offset, uint16_t value) {
  const uint8_t b[2] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
  d.Write(offset, b, 0);
}

constexpr uint16_t kPwrBtn = 1u << 8;
constexpr uint16_t kSlpEn = 1u << 13;
constexpr uint16_t SlpTyp(int type) { return static_cast<uint16_t>(type << 10); }

TEST(AcpiPm1EventTest, PowerButtonRaisesSciOnlyWhenEnabled) {
  testing::FakeIrqLine sci;
  AcpiPm1Event evt(&sci);
  evt.PressPowerButton();
  EXPECT_EQ(Read16(evt, 0), kPwrBtn);
  EXPECT_FALSE(sci.level());
  Write16(evt, 2, kPwrBtn);  // PWRBTN_EN
  EXPECT_TRUE(sci.level());
  EXPECT_EQ(Read16(evt, 2), kPwrBtn);
}

TEST(AcpiPm1EventTest, StatusBitsAreWriteOneToClear) {
  testing::FakeIrqLine sci;
  AcpiPm1Event evt(&sci);
  Write16(evt, 2, kPwrBtn);
  evt.PressPowerButton();
  Write16(evt, 0, 0x0000);  // zeros leave the status alone
  EXPECT_EQ(Read16(evt, 0), kPwrBtn);
  EXPECT_TRUE(sci.level());
  mmio::WriteByte(evt, 1, 0x01);  // a byte write to the high half clears PWRBTN_STS
  EXPECT_EQ(Read16(evt, 0), 0);
  EXPECT_FALSE(sci.level());
  EXPECT_EQ(sci.rising_edges(), 1u);
  EXPECT_EQ(sci.redundant_sets(), 0u);
}

TEST(AcpiPm1EventTest, EnableKeepsOnlyDefinedBitsAndWideReadsSeeBoth) {
  AcpiPm1Event evt;  // no SCI wired
  Write16(evt, 2, 0xFFFF);
  EXPECT_EQ(evt.enable(), 0x4721);  // TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP_WAKE_DIS
  evt.PressPowerButton();
  uint8_t all[4] = {0, 0, 0, 0};
  evt.Read(0, all, 0);
  EXPECT_EQ(all[0], 0x00);
  EXPECT_EQ(all[1], 0x01);
  EXPECT_EQ(all[2], 0x21);
  EXPECT_EQ(all[3], 0x47);
}

TEST(AcpiPm1ControlTest, SciEnAlwaysReadsOne) {
  AcpiPm1Control cnt(nullptr);
  EXPECT_EQ(Read16(cnt, 0), 0x0001);
  Write16(cnt, 0, 0x0000);
  EXPECT_EQ(Read16(cnt, 0), 0x0001);
}

TEST(AcpiPm1ControlTest, SleepTypeReadsBackButSleepEnableDoesNot) {
  int offs = 0;
  AcpiPm1Control cnt([&] { ++offs; });
  Write16(cnt, 0, SlpTyp(base::layout::kAcpiS5SlpTyp) | 0x0002);  // BM_RLD too
  EXPECT_EQ(Read16(cnt, 0), SlpTyp(base::layout::kAcpiS5SlpTyp) | 0x0003);
  EXPECT_EQ(offs, 0);  // SLP_TYPx alone does nothing
}

// acpi_hw_legacy_sleep: write SLP_TYPx, then SLP_TYPx | SLP_EN.
TEST(AcpiPm1ControlTest, SleepEnableWithS5PowersOff) {
  int offs = 0;
  AcpiPm1Control cnt([&] { ++offs; });
  Write16(cnt, 0, SlpTyp(base::layout::kAcpiS5SlpTyp));
  Write16(cnt, 0, SlpTyp(base::layout::kAcpiS5SlpTyp) | kSlpEn);
  EXPECT_EQ(offs, 1);
  EXPECT_EQ(cnt.power_offs(), 1u);
  EXPECT_EQ(Read16(cnt, 0) & kSlpEn, 0);  // write-only
}

TEST(AcpiPm1ControlTest, ByteWriteOfTheHighHalfCanPowerOff) {
  int offs = 0;
  AcpiPm1Control cnt([&] { ++offs; });
  mmio::WriteByte(cnt, 1,
                  static_cast<uint8_t>((SlpTyp(base::layout::kAcpiS5SlpTyp) | kSlpEn) >> 8));
  EXPECT_EQ(offs, 1);
}

TEST(AcpiPm1ControlTest, OtherSleepTypesAreCountedAndIgnored) {
  int offs = 0;
  AcpiPm1Control cnt([&] { ++offs; });
  for (int type : {0, 1, 3, 4, 6, 7}) {
    if (type == base::layout::kAcpiS5SlpTyp) continue;
    Write16(cnt, 0, SlpTyp(type) | kSlpEn);
  }
  EXPECT_EQ(offs, 0);
  EXPECT_EQ(cnt.ignored_sleeps(), 6u);
}

TEST(AcpiResetRegisterTest, ResetValueResets) {
  int resets = 0;
  AcpiResetRegister reg([&] { ++resets; });
  mmio::WriteByte(reg, 0, base::layout::kAcpiResetValue);
  EXPECT_EQ(resets, 1);
  EXPECT_EQ(reg.resets(), 1u);
}

TEST(AcpiResetRegisterTest, OtherWritesAreCountedAndIgnored) {
  int resets = 0;
  AcpiResetRegister reg([&] { ++resets; });
  mmio::WriteByte(reg, 0, static_cast<uint8_t>(base::layout::kAcpiResetValue + 1));
  Write16(reg, 0, base::layout::kAcpiResetValue);  // wrong width
  EXPECT_EQ(resets, 0);
  EXPECT_EQ(reg.bad_writes(), 2u);
  uint8_t v[1] = {0xAA};
  reg.Read(0, v, 0);
  EXPECT_EQ(v[0], 0);
}

}  // namespace
}  // namespace pcivmm::devices
