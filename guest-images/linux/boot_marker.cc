// The Linux guest's boot-done marker: writes PCIVMM_BOOT_MARKER_VALUE to
// PCIVMM_BOOT_MARKER_PORT (the guest ABI, guest-images/include/pcivmm_guest_abi.h), which the
// VMM timestamps. /init runs it first.
//
// A static freestanding program, not a shell one-liner: Debian's cloud kernel is built without
// /dev/port (CONFIG_DEVPORT is not set), so busybox cannot reach an I/O port; ioperm(2) (the
// kernel has CONFIG_X86_IOPL_IOPERM) grants this process the one port it writes.
// Exit status: 0 when the byte was written, 1 when ioperm failed.
#include <cstdint>

#include "guest-images/include/pcivmm_guest_abi.h"

namespace {

// x86-64 Linux system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
constexpr long kSysIoperm = 173;
constexpr long kSysExit = 60;

long Syscall3(long nr, long a, long b, long c) {
  long ret;
  asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

void Outb(uint16_t port, uint8_t value) { asm volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }

}  // namespace

extern "C" [[noreturn]] void _start() {
  // ioperm(from, num, turn_on): this process may access ports [from, from + num).
  const long status = Syscall3(kSysIoperm, PCIVMM_BOOT_MARKER_PORT, 1, 1);
  if (status == 0) Outb(PCIVMM_BOOT_MARKER_PORT, PCIVMM_BOOT_MARKER_VALUE);
  Syscall3(kSysExit, status == 0 ? 0 : 1, 0, 0);
  __builtin_unreachable();
}
