#include "vmm/devices/cmos_rtc.h"

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace pcivmm::devices {
namespace {

constexpr uint8_t kSec = 0x00, kMin = 0x02, kHour = 0x04, kWeekday = 0x06, kDay = 0x07,
                  kMonth = 0x08, kYear = 0x09, kA = 0x0A, kB = 0x0B, kC = 0x0C, kD = 0x0D,
                  kCentury = 0x32;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

class CmosRtcTest : public ::testing::Test {
 protected:
  uint8_t Get(uint8_t index) {
    const uint8_t i[1] = {index};
    rtc_.Write(0, i, 0);
    uint8_t v[1] = {0};
    rtc_.Read(1, v, 0);
    return v[0];
  }
  void Set(uint8_t index, uint8_t value) {
    const uint8_t i[1] = {index};
    rtc_.Write(0, i, 0);
    const uint8_t v[1] = {value};
    rtc_.Write(1, v, 0);
  }

  // Thursday 29 February 2024, 13:45:07.5 UTC.
  absl::Time now_ = Utc(2024, 2, 29, 13, 45, 7) + absl::Milliseconds(500);
  CmosRtc rtc_{[this] { return now_; }};
};

TEST_F(CmosRtcTest, ReadsHostUtcTimeInBcd) {
  EXPECT_EQ(Get(kSec), 0x07);
  EXPECT_EQ(Get(kMin), 0x45);
  EXPECT_EQ(Get(kHour), 0x13);
  EXPECT_EQ(Get(kWeekday), 5);  // Sunday = 1
  EXPECT_EQ(Get(kDay), 0x29);
  EXPECT_EQ(Get(kMonth), 0x02);
  EXPECT_EQ(Get(kYear), 0x24);
  EXPECT_EQ(Get(kCentury), 0x20);
}

TEST_F(CmosRtcTest, StatusRegistersStartAsPcFirmwareLeavesThem) {
  EXPECT_EQ(Get(kA), 0x26);
  EXPECT_EQ(Get(kB), 0x02);  // 24-hour, BCD
  EXPECT_EQ(Get(kD), 0x80);  // valid RAM and time
}

TEST_F(CmosRtcTest, DataModeBitSelectsBinary) {
  Set(kB, 0x06);
  EXPECT_EQ(Get(kSec), 7);
  EXPECT_EQ(Get(kMin), 45);
  EXPECT_EQ(Get(kYear), 24);
  EXPECT_EQ(Get(kCentury), 20);
}

TEST_F(CmosRtcTest, TwelveHourModeMarksPm) {
  Set(kB, 0x00);
  EXPECT_EQ(Get(kHour), 0x81);  // 1 PM
  now_ = Utc(2024, 2, 29, 0, 30, 0);
  EXPECT_EQ(Get(kHour), 0x12);  // midnight is 12 AM
  now_ = Utc(2024, 2, 29, 12, 30, 0);
  EXPECT_EQ(Get(kHour), 0x92);  // noon is 12 PM
  Set(kHour, 0x83);             // write 3 PM
  Set(kB, 0x02);
  EXPECT_EQ(Get(kHour), 0x15);
}

TEST_F(CmosRtcTest, UipIsSetOnlyJustBeforeEachSecond) {
  EXPECT_EQ(Get(kA) & 0x80, 0);
  now_ = Utc(2024, 2, 29, 13, 45, 8) - absl::Microseconds(100);
  EXPECT_EQ(Get(kA) & 0x80, 0x80);
  now_ = Utc(2024, 2, 29, 13, 45, 8) - absl::Microseconds(300);
  EXPECT_EQ(Get(kA) & 0x80, 0);
  now_ = Utc(2024, 2, 29, 13, 45, 8);
  EXPECT_EQ(Get(kA) & 0x80, 0);
}

TEST_F(CmosRtcTest, UipStaysClearWhileUpdatesAreInhibited) {
  now_ = Utc(2024, 2, 29, 13, 45, 8) - absl::Microseconds(100);
  Set(kB, 0x82);  // SET
  EXPECT_EQ(Get(kA) & 0x80, 0);
  Set(kB, 0x02);
  Set(kA, 0x06);  // divider held in reset
  EXPECT_EQ(Get(kA), 0x06);
}

TEST_F(CmosRtcTest, WrittenTimeRunsOnFromHostClock) {
  Set(kHour, 0x05);
  EXPECT_EQ(Get(kHour), 0x05);
  EXPECT_EQ(Get(kMin), 0x45);
  now_ += absl::Hours(1) + absl::Seconds(2);
  EXPECT_EQ(Get(kHour), 0x06);
  EXPECT_EQ(Get(kSec), 0x09);
  EXPECT_EQ(Get(kDay), 0x29);
}

// Linux's mc146818_set_time: set B.SET, write year, month, day, hours, minutes, seconds, clear
// SET. Fields must not be normalised one at a time (31 Jan -> month 2 would be 3 March).
TEST_F(CmosRtcTest, SetBitFreezesTimeAndAppliesAllFieldsWhenCleared) {
  now_ = Utc(2023, 1, 31, 10, 0, 0);
  Set(kB, 0x82);
  Set(kYear, 0x25);
  Set(kMonth, 0x02);
  Set(kDay, 0x28);
  Set(kSec, 0x30);
  now_ += absl::Seconds(5);
  EXPECT_EQ(Get(kSec), 0x30);  // frozen while SET
  Set(kB, 0x02);
  EXPECT_EQ(Get(kYear), 0x25);
  EXPECT_EQ(Get(kMonth), 0x02);
  EXPECT_EQ(Get(kDay), 0x28);
  now_ += absl::Seconds(5);
  EXPECT_EQ(Get(kSec), 0x35);
}

TEST_F(CmosRtcTest, SettingSetClearsUpdateInterruptEnable) {
  Set(kB, 0x92);  // SET | UIE | 24h
  EXPECT_EQ(Get(kB), 0x82);
}

TEST_F(CmosRtcTest, StatusCReportsUpdatesAndClearsOnRead) {
  EXPECT_EQ(Get(kC), 0x00);
  now_ += absl::Seconds(1);
  EXPECT_EQ(Get(kC), 0x10);  // UF
  EXPECT_EQ(Get(kC), 0x00);
  Set(kB, 0x12);  // UIE
  now_ += absl::Seconds(1);
  EXPECT_EQ(Get(kC), 0x90);  // IRQF | UF
}

TEST_F(CmosRtcTest, CenturyRollsOver) {
  now_ = Utc(2099, 12, 31, 23, 59, 59);
  EXPECT_EQ(Get(kCentury), 0x20);
  EXPECT_EQ(Get(kYear), 0x99);
  now_ += absl::Seconds(1);
  EXPECT_EQ(Get(kCentury), 0x21);
  EXPECT_EQ(Get(kYear), 0x00);
  EXPECT_EQ(Get(kMonth), 0x01);
}

TEST_F(CmosRtcTest, CenturyWriteMovesTheYear) {
  Set(kCentury, 0x19);
  EXPECT_EQ(Get(kCentury), 0x19);
  EXPECT_EQ(Get(kYear), 0x24);
  EXPECT_EQ(Get(kWeekday), 6);  // 29 February 1924 was a Friday
}

TEST_F(CmosRtcTest, DayOfWeekWriteIsKeptAsAShift) {
  Set(kWeekday, 1);
  EXPECT_EQ(Get(kWeekday), 1);
  now_ += absl::Hours(24);
  EXPECT_EQ(Get(kWeekday), 2);
  now_ += absl::Hours(24 * 6);
  EXPECT_EQ(Get(kWeekday), 1);
}

TEST_F(CmosRtcTest, InvalidTimeValuesAreIgnoredAndCounted) {
  Set(kSec, 0x5A);    // not BCD
  Set(kMonth, 0x13);  // month 13
  Set(kHour, 0x24);   // hour 24
  Set(kWeekday, 0);
  EXPECT_EQ(Get(kSec), 0x07);
  EXPECT_EQ(Get(kMonth), 0x02);
  EXPECT_EQ(Get(kHour), 0x13);
  EXPECT_EQ(Get(kWeekday), 5);
  EXPECT_EQ(rtc_.bad_accesses(), 4u);
}

TEST_F(CmosRtcTest, ReadOnlyStatusRegistersIgnoreWrites) {
  Set(kD, 0x00);
  Set(kC, 0xFF);
  Set(kA, 0xA6);  // UIP is read-only, the rest is storage
  EXPECT_EQ(Get(kD), 0x80);
  EXPECT_EQ(Get(kA), 0x26);
  EXPECT_EQ(rtc_.bad_accesses(), 2u);
}

TEST_F(CmosRtcTest, OtherBytesArePlainRamAndNmiBitIsIgnored) {
  Set(0x80 | 0x40, 0xAB);
  EXPECT_EQ(Get(0x40), 0xAB);
  Set(0x7F, 0x12);
  EXPECT_EQ(Get(0xFF), 0x12);
  rtc_.SetRamByte(0x34, 0x56);
  EXPECT_EQ(Get(0x34), 0x56);
  EXPECT_EQ(Get(0x35), 0x00);
}

TEST_F(CmosRtcTest, WideAccessIsSplitIntoIndexThenData) {
  const uint8_t index_and_value[2] = {0x50, 0x77};
  rtc_.Write(0, index_and_value, 0);
  EXPECT_EQ(Get(0x50), 0x77);
  EXPECT_EQ(rtc_.bad_accesses(), 1u);
}

TEST_F(CmosRtcTest, IndexPortReadsAllOnes) {
  uint8_t v[1] = {0};
  rtc_.Read(0, v, 0);
  EXPECT_EQ(v[0], 0xFF);
}

}  // namespace
}  // namespace pcivmm::devices
