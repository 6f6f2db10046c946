/* Two vCPUs. vCPU 0 writes all-ones to BAR0 of 00:01.0 through ECAM (the sizing write) and
 * then raises a flag in RAM; vCPU 1 waits for the flag and reads the BAR back through ECAM:
 * it must see the size mask that vCPU 0's write put in the shadow. */
#include "pci_cfg.h"

static volatile uint32_t written;

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)arg;
  cfg_path = CFG_ECAM;
  if (cpu == 0) {
    cfg_write(1, 0, 0x10, 4, 0xFFFFFFFF);
    written = 1;
    for (;;) __asm__ volatile("hlt");
  }
  while (!written) __asm__ volatile("pause");
  report("bar0_after_sizing", cfg_read(1, 0, 0x10, 4));
  return 0;
}
