// Fuzzes the small legacy devices a Linux guest pokes at boot: the CMOS RTC (with a clock
// the input moves), the ACPI PM1a event/control blocks and reset register, and the i8042.
// Any byte-wide access sequence must keep each device's spec-defined invariants.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/time/time.h"
#include "mmio/io_bytes.h"
#include "tests/fuzz/fuzz_input.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/cmos_rtc.h"
#include "vmm/devices/fake_irq_line.h"
#include "vmm/devices/i8042.h"

namespace pcivmm::fuzz {
namespace {

struct Devices {
  absl::Time now;
  devices::CmosRtc cmos{[this] { return now; }};
  devices::testing::FakeIrqLine sci;
  devices::AcpiPm1Event pm1_event{&sci};
  devices::AcpiPm1Control pm1_control{nullptr};
  devices::AcpiResetRegister reset{nullptr};
  std::shared_ptr<devices::I8042> kbc = std::make_shared<devices::I8042>(nullptr);
  std::shared_ptr<mmio::IoDevice> kbc_data = devices::I8042::DataPort(kbc);
  std::shared_ptr<mmio::IoDevice> kbc_command = devices::I8042::CommandPort(kbc);
};

bool ValidBcd(uint8_t v) { return (v >> 4) <= 9 && (v & 0x0F) <= 9; }

// Time registers read back in the format status B selects, within their ranges.
void CheckCmos(Devices& d) {
  mmio::WriteByte(d.cmos, 0, 0x0D);
  Check(mmio::ReadByte(d.cmos, 1) == 0x80, "CMOS status D reads VRT");
  mmio::WriteByte(d.cmos, 0, 0x0B);
  const uint8_t b = mmio::ReadByte(d.cmos, 1);
  constexpr uint8_t kTimeRegisters[] = {0x00, 0x02, 0x06, 0x07, 0x08, 0x09, 0x32};
  for (const uint8_t index : kTimeRegisters) {
    mmio::WriteByte(d.cmos, 0, index);
    const uint8_t v = mmio::ReadByte(d.cmos, 1);
    Check((b & 0x04) || ValidBcd(v), "CMOS time registers are BCD unless DM");
  }
  mmio::WriteByte(d.cmos, 0, 0x04);
  const uint8_t hour = mmio::ReadByte(d.cmos, 1) & ((b & 0x02) ? 0xFF : 0x7F);
  Check((b & 0x04) || ValidBcd(hour), "CMOS hours are BCD unless DM");
}

void CheckAcpi(Devices& d) {
  const bool enabled_event = (d.pm1_event.status() & d.pm1_event.enable() & 0x0721) != 0;
  Check(d.sci.level() == enabled_event, "SCI level == an enabled PM1 status bit is set");
  Check(d.sci.redundant_sets() == 0, "SCI set only on change");
  Check((mmio::ReadByte(d.pm1_control, 0) & 0x01) == 0x01, "SCI_EN reads 1");
  Check((mmio::ReadByte(d.pm1_control, 1) & 0x20) == 0, "SLP_EN reads 0");
}

void CheckI8042(Devices& d) {
  const uint8_t status = mmio::ReadByte(*d.kbc_command, 0);
  Check((status & 0x02) == 0, "i8042 is never busy");
  Check((status & 0x20) == 0 || (status & 0x01), "aux data only with output full");
}

// The device a selector picks, and the offset within it (null: not a port access).
mmio::IoDevice* Target(Devices& d, uint8_t op, uint64_t* offset) {
  switch (op & 0x07) {
    case 0:
      *offset = (op >> 4) & 1;
      return &d.cmos;
    case 1:
      *offset = (op >> 4) & 3;
      return &d.pm1_event;
    case 2:
      *offset = (op >> 4) & 1;
      return &d.pm1_control;
    case 3:
      return &d.reset;
    case 4:
      return d.kbc_data.get();
    case 5:
      return d.kbc_command.get();
    default:
      return nullptr;
  }
}

void Step(Devices& d, FuzzInput& in) {
  const uint8_t op = in.U8();
  const bool write = (op & 0x08) != 0;
  uint64_t offset = 0;
  mmio::IoDevice* target = Target(d, op, &offset);
  if (target == nullptr) {
    if ((op & 0x07) == 6) d.now += absl::Milliseconds(in.U8()) * (1 + ((op >> 4) & 0x0F) * 1000);
    if ((op & 0x07) == 7 && write) d.pm1_event.PressPowerButton();
    return;
  }
  if (write) {
    mmio::WriteByte(*target, offset, in.U8());
  } else {
    mmio::ReadByte(*target, offset);
  }
}

}  // namespace
}  // namespace pcivmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  fuzz::FuzzInput in(data, size);
  fuzz::Devices d;
  d.now = absl::FromUnixSeconds(in.U32());
  while (!in.empty()) {
    fuzz::Step(d, in);
    fuzz::CheckAcpi(d);
    fuzz::CheckI8042(d);
  }
  fuzz::CheckCmos(d);
  return 0;
}
