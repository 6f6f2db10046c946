/* Configuration access for test guests through one chosen path, counting every access. */
#ifndef PCIVMM_GUEST_PCI_CFG_H_
#define PCIVMM_GUEST_PCI_CFG_H_

#include "guest.h"

#define ECAM_BASE 0xE0000000ull
enum cfg_path { CFG_PIO = 0, CFG_ECAM = 1 };

struct cfg_counts {
  uint64_t reads;
  uint64_t writes;
};

extern enum cfg_path cfg_path;
extern struct cfg_counts cfg_counts;
extern uint32_t cfg_bus; /* the bus cfg_read and cfg_write address (0 unless set) */

uint32_t cfg_read(uint32_t dev, uint32_t fn, uint32_t reg, int width);
/* Type 1 (0xCF8/0xCFC) to any bus, uncounted: what cfg_read/cfg_write's PIO path does on bus 0. */
uint32_t pio_cfg_read(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg, int width);
void pio_cfg_write(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg, int width,
                   uint32_t value);
void cfg_write(uint32_t dev, uint32_t fn, uint32_t reg, int width, uint32_t value);

#endif /* PCIVMM_GUEST_PCI_CFG_H_ */
