/* A tiny runtime for freestanding test guests: port and MMIO accessors, console output. */
#ifndef PCIVMM_GUEST_H_
#define PCIVMM_GUEST_H_

#include <stdint.h>

#include "include/pcivmm_guest_abi.h"

static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outw(uint16_t port, uint16_t v) {
  __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
  __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint16_t inw(uint16_t port) {
  uint16_t v;
  __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t*)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t*)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t*)a; }
static inline uint64_t mmio_read64(uint64_t a) { return *(volatile uint64_t*)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t*)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t*)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t*)a = v; }
static inline void mmio_write64(uint64_t a, uint64_t v) { *(volatile uint64_t*)a = v; }

/* rep outsb / rep insb of n bytes. */
void outsb(uint16_t port, const void* buf, uint64_t n);
void insb(uint16_t port, void* buf, uint64_t n);

void puts(const char* s);
void put_u64(uint64_t v);
void put_hex(uint64_t v);
/* Writes the boot-done marker (one PIO exit): harnesses wait for it, and pcivmm
 * --pause-on-boot-marker parks the VM right after it. */
void boot_marker(void);

/* Prints "REPORT <key>=<value>\n": the machine-readable results the tests parse. */
void report(const char* key, uint64_t value);

/* Defined by each guest: returns its exit status. */
int guest_main(uint64_t arg, uint64_t cpu);

#endif /* PCIVMM_GUEST_H_ */
