/* Guest edge cases the spec answers with all-ones reads and dropped writes. arg:
 * 0: move 00:01.0's BAR0 (16 MiB, decode on) over the IOAPIC and LAPIC pages, read the LAPIC
 *    version register there, move the BAR back and read the host's pattern;
 * 1: PIO type-1 accesses to buses the platform does not have (past the ECAM window's bus 0);
 * 2: ECAM accesses at the window's last dword, straddling its end and just past it. */
#include "pci_cfg.h"

#define LAPIC_BASE 0xFEE00000ull
#define LAPIC_VERSION 0x30
#define ECAM_SIZE 0x100000ull /* one bus */

static uint64_t bar0(void) { return cfg_read(1, 0, 0x10, 4) & ~0xFull; }

static void bar_over_lapic(void) {
  const uint64_t base = bar0();
  report("lapic_before", mmio_read32(LAPIC_BASE + LAPIC_VERSION));
  cfg_write(1, 0, 0x10, 4, (uint32_t)LAPIC_BASE);
  report("bar0_moved", bar0());
  report("lapic_during", mmio_read32(LAPIC_BASE + LAPIC_VERSION));
  cfg_write(1, 0, 0x10, 4, (uint32_t)base);
  report("after_restore", mmio_read32(base));
}

static void type1_past_ecam(void) {
  const uint32_t bar = cfg_read(1, 0, 0x10, 4);
  report("bus1_vendor", pio_cfg_read(1, 1, 0, 0, 4));
  report("bus255_vendor", pio_cfg_read(255, 1, 0, 0, 4));
  pio_cfg_write(1, 1, 0, 0x10, 4, 0x12345670); /* must not alias bus 0's 00:01.0 */
  pio_cfg_write(255, 31, 0, 0x04, 4, 0xFFFF);
  report("bus0_bar0_unchanged", cfg_read(1, 0, 0x10, 4) == bar);
}

static void ecam_edges(void) {
  report("last_dword", mmio_read32(ECAM_BASE + ECAM_SIZE - 4));
  report("straddling", mmio_read64(ECAM_BASE + ECAM_SIZE - 4));
  report("past_end", mmio_read32(ECAM_BASE + ECAM_SIZE));
  mmio_write32(ECAM_BASE + ECAM_SIZE, 0x12345678);
  report("past_end_again", mmio_read32(ECAM_BASE + ECAM_SIZE));
  report("vendor", cfg_read(1, 0, 0, 4)); /* the window still works */
}

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  cfg_path = CFG_ECAM;
  if (arg == 0) bar_over_lapic();
  if (arg == 1) type1_past_ecam();
  if (arg == 2) ecam_edges();
  return 0;
}
