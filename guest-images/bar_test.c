/* Exercises 00:01.0's BAR0 through the vBAR mapper (config through ECAM). arg:
 * 0: read the host's pattern at BAR0+0, write 0x5A5A... at BAR0+8;
 * 1: read BAR0+0 with memory decode on, off, and on again;
 * 2: move BAR0 onto the ECAM window (a conflict) with decode on, read there, move it back;
 * 3: read the host's pattern at the 64-bit BAR1 (above 4 GiB), write 0xC0FFEE... at +4 KiB. */
#include "pci_cfg.h"

#define CMD_MEMORY 0x2

static uint64_t bar0(void) { return cfg_read(1, 0, 0x10, 4) & ~0xFull; }

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  cfg_path = CFG_ECAM;
  const uint64_t base = bar0();
  report("bar0", base);
  if (arg == 0) {
    report("host_pattern", mmio_read64(base));
    mmio_write64(base + 8, 0x5A5A5A5A5A5A5A5Aull);
  } else if (arg == 1) {
    const uint16_t cmd = (uint16_t)cfg_read(1, 0, 0x04, 2);
    report("decode_on", mmio_read32(base));
    cfg_write(1, 0, 0x04, 2, cmd & ~CMD_MEMORY);
    report("decode_off", mmio_read32(base));
    cfg_write(1, 0, 0x04, 2, cmd | CMD_MEMORY);
    report("decode_on_again", mmio_read32(base));
  } else if (arg == 3) {
    const uint64_t bar1 = (cfg_read(1, 0, 0x14, 4) & ~0xFull) | (uint64_t)cfg_read(1, 0, 0x18, 4)
                                                                    << 32;
    report("bar1", bar1);
    report("bar1_host_pattern", mmio_read64(bar1));
    mmio_write64(bar1 + 0x1000, 0xC0FFEE00C0FFEE00ull);
    report("bar1_readback", mmio_read64(bar1 + 0x1000));
  } else if (arg == 2) {
    cfg_write(1, 0, 0x10, 4, (uint32_t)ECAM_BASE);
    report("bar0_moved", bar0());
    report("vendor_via_ecam", mmio_read32(ECAM_BASE + (1 << 15)));
    cfg_write(1, 0, 0x10, 4, (uint32_t)base);
    report("after_restore", mmio_read32(base));
  }
  return 0;
}
