// What the Linux guest's freestanding static programs (boot_marker.cc, cfg_storm.cc) share:
// system calls without libc, a clock, console lines and exit. Header-only: each program is one
// translation unit built by build.sh with -nostdlib (no namespace: the guest-images room has
// none).
#ifndef PCIVMM_GUEST_IMAGES_LINUX_FREESTANDING_H_
#define PCIVMM_GUEST_IMAGES_LINUX_FREESTANDING_H_

#include <cstdint>

// x86-64 Linux system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
constexpr long kSysWrite = 1;
constexpr long kSysOpen = 2;
constexpr long kSysPread64 = 17;
constexpr long kSysExit = 60;
constexpr long kSysIoperm = 173;
constexpr long kSysClockGettime = 228;
constexpr long kClockMonotonic = 1;  // <linux/time.h>
constexpr long kClockBoottime = 7;

inline long Syscall(long nr, long a, long b = 0, long c = 0, long d = 0) {
  long ret;
  register long r10 asm("r10") = d;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
               : "rcx", "r11", "memory");
  return ret;
}

inline uint64_t ClockNs(long clock) {
  struct {
    long sec;
    long nsec;
  } ts{};
  Syscall(kSysClockGettime, clock, reinterpret_cast<long>(&ts));
  return static_cast<uint64_t>(ts.sec) * 1000000000u + static_cast<uint64_t>(ts.nsec);
}

// A console line under construction; Put* append, Print writes it to stdout (the console).
struct Line {
  char text[512];
  int len = 0;
  void Put(const char* s) {
    while (*s != '\0' && len < 510) text[len++] = *s++;
  }
  void PutNumber(uint64_t v, unsigned base) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = "0123456789abcdef"[v % base];
      v /= base;
    } while (v != 0);
    if (base == 16) Put("0x");
    while (n > 0 && len < 510) text[len++] = digits[--n];
  }
  void Print() {
    text[len++] = '\n';
    Syscall(kSysWrite, 1, reinterpret_cast<long>(text), len);
  }
};

[[noreturn]] inline void Exit(long status) {
  Syscall(kSysExit, status);
  __builtin_unreachable();
}

#endif  // PCIVMM_GUEST_IMAGES_LINUX_FREESTANDING_H_
