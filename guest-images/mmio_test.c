/* MMIO of every width (1, 2, 4, 8 bytes) against the scratch device; reports its counts. */
#include "guest.h"

#define ROUNDS 8

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)arg;
  (void)cpu;
  const uint64_t b = PCIVMM_TEST_MMIO_BASE;
  uint64_t reads = 0, writes = 0;
  int bad = 0;
  for (uint64_t i = 0; i < ROUNDS; ++i) {
    mmio_write8(b + 0x10 + i, (uint8_t)(0x11 + i));
    mmio_write16(b + 0x20 + 2 * i, (uint16_t)(0x2222 + i));
    mmio_write32(b + 0x40 + 4 * i, 0x33333333u + (uint32_t)i);
    mmio_write64(b + 0x80 + 8 * i, 0x4444444444444444ull + i);
    writes += 4;
    bad += mmio_read8(b + 0x10 + i) != (uint8_t)(0x11 + i);
    bad += mmio_read16(b + 0x20 + 2 * i) != (uint16_t)(0x2222 + i);
    bad += mmio_read32(b + 0x40 + 4 * i) != 0x33333333u + (uint32_t)i;
    bad += mmio_read64(b + 0x80 + 8 * i) != 0x4444444444444444ull + i;
    reads += 4;
  }
  report("mmio_reads", reads);
  report("mmio_writes", writes);
  report("bad", (uint64_t)bad);
  return bad != 0;
}
