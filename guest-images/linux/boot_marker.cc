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

namespace {

// x86-64 Linux system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
constexpr long kSysWrite = 1;
constexpr long kSysIoperm = 173;
constexpr long kSysClockGettime = 228;
constexpr long kSysExit = 60;
constexpr long kClockBoottime = 7;  // <linux/time.h>

long Syscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

void Outb(uint16_t port, uint8_t value) { asm volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
void Outl(uint16_t port, uint32_t value) { asm volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }

uint64_t UptimeUs() {
  struct {
    long sec;
    long nsec;
  } ts{};
  Syscall3(kSysClockGettime, kClockBoottime, reinterpret_cast<long>(&ts), 0);
  return static_cast<uint64_t>(ts.sec) * 1000000u + static_cast<uint64_t>(ts.nsec) / 1000u;
}

void PrintUptime(uint64_t us) {
  char line[48] = "PCIVMM uptime_us ";
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + us % 10);
    us /= 10;
  } while (us != 0);
  int len = 17;
  while (n > 0) line[len++] = digits[--n];
  line[len++] = '\n';
  Syscall3(kSysWrite, 1, reinterpret_cast<long>(line), len);
}

}  // namespace

extern "C" [[noreturn]] void _start() {
  // ioperm(from, num, turn_on): this process may access ports [from, from + num).
  const uint64_t uptime_us = UptimeUs();
  // The line first: under QEMU q35 (nested in the lab) the dword write to the uptime port
  // raises #GP although ioperm granted it, and the line must reach every VMM's console.
  PrintUptime(uptime_us);
  const long status = Syscall3(kSysIoperm, PCIVMM_BOOT_MARKER_PORT, 8, 1);
  if (status == 0) {
    Outl(PCIVMM_BOOT_UPTIME_PORT, static_cast<uint32_t>(uptime_us));
    Outb(PCIVMM_BOOT_MARKER_PORT, PCIVMM_BOOT_MARKER_VALUE);
  }
  Syscall3(kSysExit, status == 0 ? 0 : 1, 0, 0);
  __builtin_unreachable();
}
