// The Linux guest's config-read storm: pcivmm-cfg-storm FILE OFFSET COUNT [eof] preads the
// dword at OFFSET of FILE COUNT times and prints
//   PCIVMM storm FILE OFFSET COUNT NS VALUE
// (NS: CLOCK_MONOTONIC nanoseconds around the loop; VALUE: the last dword read, hex). FILE is a
// device's sysfs config file (/sys/bus/pci/devices/BDF/config: each 4-byte pread at an aligned
// offset is one pci_user_read_config_dword, one config access) or, for the floor, a file in
// tmpfs. With "eof", each pread must return 0 bytes: OFFSET is at the end of the file, so a
// sysfs config file is read through the kernel's sysfs path without reaching the device's
// config space (kernfs stops at the attribute's size). The VMware seed's table (100,000 reads
// through PIO, a trapping ECAM and a read-only ECAM) was measured this way, from inside Linux.
//
// Freestanding and static like boot_marker.cc (freestanding.h): no libc in the initramfs.
// Exit status: 0, or 1 with "PCIVMM error storm ..." when an argument or a syscall failed.
#include <cstdint>

#include "guest-images/linux/freestanding.h"

namespace {

[[noreturn]] void Fail(const char* what, const char* file) {
  Line l;
  l.Put("PCIVMM error storm ");
  l.Put(file);
  l.Put(": ");
  l.Put(what);
  l.Print();
  Exit(1);
}

// Decimal or 0x-prefixed hex; false on anything else.
bool ParseNumber(const char* s, uint64_t* out) {
  unsigned base = 10;
  if (s[0] == '0' && s[1] == 'x') {
    base = 16;
    s += 2;
  }
  if (*s == '\0') return false;
  uint64_t v = 0;
  for (; *s != '\0'; ++s) {
    const char c = *s;
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else {
      return false;
    }
    v = v * base + d;
  }
  *out = v;
  return true;
}

}  // namespace

// argc, argv[] and envp[] sit on the initial stack (System V x86-64 ABI, 3.4.1).
extern "C" [[noreturn]] void StormMain(long* sp) {
  char** argv = reinterpret_cast<char**>(sp + 1);
  uint64_t offset = 0, count = 0;
  const bool eof = sp[0] == 5 && argv[4][0] == 'e' && argv[4][1] == 'o' && argv[4][2] == 'f' &&
                   argv[4][3] == '\0';
  if ((sp[0] != 4 && !eof) || !ParseNumber(argv[2], &offset) || !ParseNumber(argv[3], &count) ||
      count == 0) {
    Fail("usage: pcivmm-cfg-storm FILE OFFSET COUNT [eof]", sp[0] > 1 ? argv[1] : "-");
  }
  const long want = eof ? 0 : 4;
  const long fd = Syscall(kSysOpen, reinterpret_cast<long>(argv[1]), 0 /*O_RDONLY*/);
  if (fd < 0) Fail("open failed", argv[1]);
  uint32_t value = 0;
  const uint64_t t0 = ClockNs(kClockMonotonic);
  for (uint64_t i = 0; i < count; ++i) {
    if (Syscall(kSysPread64, fd, reinterpret_cast<long>(&value), 4, static_cast<long>(offset)) !=
        want) {
      Fail(eof ? "pread did not return 0 bytes" : "pread did not return 4 bytes", argv[1]);
    }
  }
  const uint64_t ns = ClockNs(kClockMonotonic) - t0;
  Line l;
  l.Put("PCIVMM storm ");
  for (int i = 1; i <= 3; ++i) {
    l.Put(argv[i]);
    l.Put(" ");
  }
  l.PutNumber(ns, 10);
  l.Put(" ");
  l.PutNumber(value, 16);
  l.Print();
  Exit(0);
}

asm(".globl _start\n"
    "_start:\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call StormMain\n");
