/* Reads a read-only memory slot `arg` times (no exits expected), then writes it once (one
 * MMIO exit expected) and checks the write did not change the memory. */
#include "guest.h"

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  const uint64_t rom = PCIVMM_TEST_ROM_BASE;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < arg; ++i) {
    sum += mmio_read64(rom + (i * 8) % PCIVMM_TEST_ROM_SIZE);
  }
  const uint64_t before = mmio_read64(rom);
  mmio_write64(rom, ~before);
  const uint64_t after = mmio_read64(rom);
  report("rom_reads", arg + 2);
  report("rom_writes", 1);
  report("sum", sum);
  report("write_ignored", after == before);
  return after != before;
}
