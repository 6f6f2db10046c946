#include "guest.h"

void outsb(uint16_t port, const void* buf, uint64_t n) {
  __asm__ volatile("rep outsb" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
}

void insb(uint16_t port, void* buf, uint64_t n) {
  __asm__ volatile("rep insb" : "+D"(buf), "+c"(n) : "d"(port) : "memory");
}

static uint64_t strlen_(const char* s) {
  uint64_t n = 0;
  while (s[n]) ++n;
  return n;
}

/* One rep outsb per string keeps console exits few (one per page-bounded chunk). */
void puts(const char* s) { outsb(PCIVMM_DEBUG_CONSOLE_PORT, s, strlen_(s)); }

void put_u64(uint64_t v) {
  char buf[21];
  int i = 20;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  puts(buf + i);
}

void put_hex(uint64_t v) {
  char buf[19];
  int i = 18;
  buf[i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[v & 0xF];
    v >>= 4;
  } while (v);
  buf[--i] = 'x';
  buf[--i] = '0';
  puts(buf + i);
}

void report(const char* key, uint64_t value) {
  puts("REPORT ");
  puts(key);
  puts("=");
  put_u64(value);
  puts("\n");
}

void boot_marker(void) { outb(PCIVMM_BOOT_MARKER_PORT, PCIVMM_BOOT_MARKER_VALUE); }
