// The Linux guest's boot-done marker: writes PCIVMM_BOOT_MARKER_VALUE to
// PCIVMM_BOOT_MARKER_PORT (the guest ABI, guest-images/include/pcivmm_guest_abi.h), which the
// VMM timestamps. /init runs it first.
//
// A static freestanding program, not a shell one-liner: Debian's cloud kernel is built without
// /dev/port (CONFIG_DEVPORT is not set), so busybox cannot reach an I/O port; ioperm(2) (the
// kernel has CONFIG_X86_IOPL_IOPERM) grants this process the one port it writes.
// It prints "PCIVMM uptime_us N" (the guest's CLOCK_BOOTTIME) on stdout, the console, for any
// VMM (the boot bench's QEMU runs too), then writes N to PCIVMM_BOOT_UPTIME_PORT and the
// marker byte.
// Exit status: 0 when the byte was written, 1 when ioperm failed.
#include <cstdint>

#include "guest-images/include/pcivmm_guest_abi.h"
#include "guest-images/linux/freestanding.h"

namespace {

void Outb(uint16_t port, uint8_t value) { asm volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
void Outl(uint16_t port, uint32_t value) { asm volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }

}  // namespace

extern "C" [[noreturn]] void _start() {
  const uint64_t uptime_us = ClockNs(kClockBoottime) / 1000u;
  // The line first: under QEMU q35 (nested in the lab) the dword write to the uptime port
  // raises #GP although ioperm granted it, and the line must reach every VMM's console.
  Line line;
  line.Put("PCIVMM uptime_us ");
  line.PutNumber(uptime_us, 10);
  line.Print();
  // ioperm(from, num, turn_on): this process may access ports [from, from + num).
  const long status = Syscall(kSysIoperm, PCIVMM_BOOT_MARKER_PORT, 8, 1);
  if (status == 0) {
    Outl(PCIVMM_BOOT_UPTIME_PORT, static_cast<uint32_t>(uptime_us));
    Outb(PCIVMM_BOOT_MARKER_PORT, PCIVMM_BOOT_MARKER_VALUE);
  }
  Exit(status == 0 ? 0 : 1);
}
