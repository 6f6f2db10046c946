#include "pci_cfg.h"

enum cfg_path cfg_path;
struct cfg_counts cfg_counts;
uint32_t cfg_bus;

/* PCIe r5.0, 7.2.2, Table 7-1: the ECAM address of bus, device, function and register. */
static uint64_t ecam_addr(uint32_t dev, uint32_t fn, uint32_t reg) {
  return ECAM_BASE + ((uint64_t)cfg_bus << 20 | (uint64_t)dev << 15 | (uint64_t)fn << 12 | reg);
}

/* Mechanism #1: latch the address in 0xCF8 (one exit), then the data port (one exit). */
static uint16_t latch(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg) {
  outl(0xCF8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC));
  return (uint16_t)(0xCFC + (reg & 3));
}

uint32_t pio_cfg_read(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg, int width) {
  const uint16_t port = latch(bus, dev, fn, reg);
  return width == 1 ? inb(port) : width == 2 ? inw(port) : inl(port);
}

void pio_cfg_write(uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg, int width,
                   uint32_t value) {
  const uint16_t port = latch(bus, dev, fn, reg);
  if (width == 1) {
    outb(port, (uint8_t)value);
  } else if (width == 2) {
    outw(port, (uint16_t)value);
  } else {
    outl(port, value);
  }
}

uint32_t cfg_read(uint32_t dev, uint32_t fn, uint32_t reg, int width) {
  cfg_counts.reads++;
  if (cfg_path == CFG_ECAM) {
    const uint64_t a = ecam_addr(dev, fn, reg);
    return width == 1 ? mmio_read8(a) : width == 2 ? mmio_read16(a) : mmio_read32(a);
  }
  return pio_cfg_read(cfg_bus, dev, fn, reg, width);
}

void cfg_write(uint32_t dev, uint32_t fn, uint32_t reg, int width, uint32_t value) {
  cfg_counts.writes++;
  if (cfg_path == CFG_ECAM) {
    const uint64_t a = ecam_addr(dev, fn, reg);
    if (width == 1) {
      mmio_write8(a, (uint8_t)value);
    } else if (width == 2) {
      mmio_write16(a, (uint16_t)value);
    } else {
      mmio_write32(a, value);
    }
    return;
  }
  pio_cfg_write(cfg_bus, dev, fn, reg, width, value);
}
