/* Enumerates bus 0 the way Linux's probe does, through the path in arg bit 0 (0 = PIO
 * 0xCF8/0xCFC, 1 = ECAM; bit 1: report totals only; bit 2: batched sizing, as Linux 6.14+;
 * bit 3: number the buses behind bridges depth first from arg bits 8..15 (0: 1) and walk them):
 * vendor ID of all 32 x 8 functions, each present header, the capability lists, and every BAR
 * and the ROM sized. Before 6.14 Linux turned memory and I/O decode off and back on around each
 * BAR and the ROM; since 6.14 ("PCI: Batch BAR sizing operations", pci_read_bases) it turns
 * decode off once per function, sizes all its BARs and its ROM, and restores the command
 * register once. Reports what it found and how many accesses it made. The boot marker comes
 * first, before any configuration access. */
#include "pci_cfg.h"

#define CMD_DECODE 0x3 /* PCI_COMMAND_IO | PCI_COMMAND_MEMORY */

static int quiet;         /* arg bit 1: only the totals (benchmarks: console output costs exits) */
static int batched;       /* arg bit 2: one decode off/on pair per function, as Linux 6.14+ */
static int bridges;       /* arg bit 3: number the buses behind bridges and walk them too */
static uint32_t next_bus; /* the next bus number to assign (arg bits 8..15; 0: 1) */

/* Keys "fn.DD.F.what" on bus 0, "bBB.fn.DD.F.what" (BB in hex) beyond it. */
static void report_fn(uint32_t dev, uint32_t fn, const char* what, uint64_t v) {
  if (quiet) return;
  char key[40] = "";
  int i = 0;
  if (cfg_bus != 0) {
    key[i++] = 'b';
    key[i++] = "0123456789abcdef"[cfg_bus >> 4];
    key[i++] = "0123456789abcdef"[cfg_bus & 15];
    key[i++] = '.';
  }
  key[i++] = 'f';
  key[i++] = 'n';
  key[i++] = '.';
  key[i++] = (char)('0' + dev / 10);
  key[i++] = (char)('0' + dev % 10);
  key[i++] = '.';
  key[i++] = (char)('0' + fn);
  key[i++] = '.';
  for (const char* p = what; *p && i < 39; ++p) key[i++] = *p;
  key[i] = 0;
  report(key, v);
}

/* Writes all-ones, reads back, restores: returns the read-back value. */
static uint32_t probe(uint32_t dev, uint32_t fn, uint32_t reg, uint32_t ones) {
  const uint32_t orig = cfg_read(dev, fn, reg, 4);
  cfg_write(dev, fn, reg, 4, ones);
  const uint32_t v = cfg_read(dev, fn, reg, 4);
  cfg_write(dev, fn, reg, 4, orig);
  return v;
}

static uint64_t command_writes; /* of the function being probed */

/* Turns decode off when `toggle` and it is on; returns what decode_restore needs (0: nothing
 * to restore). */
static uint16_t decode_off(uint32_t dev, uint32_t fn, int toggle) {
  if (!toggle) return 0;
  const uint16_t saved = (uint16_t)cfg_read(dev, fn, 0x04, 2);
  if (saved & CMD_DECODE) {
    cfg_write(dev, fn, 0x04, 2, saved & ~CMD_DECODE);
    command_writes++;
  }
  return saved;
}

static void decode_restore(uint32_t dev, uint32_t fn, uint16_t saved) {
  if (saved & CMD_DECODE) {
    cfg_write(dev, fn, 0x04, 2, saved);
    command_writes++;
  }
}

static const char* const kBarAddr[] = {"bar0.addr", "bar1.addr", "bar2.addr",
                                       "bar3.addr", "bar4.addr", "bar5.addr"};
static const char* const kBarSize[] = {"bar0.size", "bar1.size", "bar2.size",
                                       "bar3.size", "bar4.size", "bar5.size"};

/* Sizes the BAR at `i`, with decode turned off around it when `toggle`; returns the number of
 * BAR slots it takes (2 for a 64-bit BAR). */
static int size_bar(uint32_t dev, uint32_t fn, int i, int toggle) {
  const uint32_t reg = 0x10 + 4 * (uint32_t)i;
  const uint16_t cmd = decode_off(dev, fn, toggle);
  const uint32_t lo = cfg_read(dev, fn, reg, 4);
  const uint32_t mask_lo = probe(dev, fn, reg, 0xFFFFFFFF);
  const int is64 = !(lo & 1) && (lo & 6) == 4;
  uint64_t addr = lo & ((lo & 1) ? ~3u : ~0xFu), mask = mask_lo | 0xFFFFFFFF00000000ull;
  if (is64) {
    addr |= (uint64_t)cfg_read(dev, fn, reg + 4, 4) << 32;
    mask = (mask & 0xFFFFFFFFull) | (uint64_t)probe(dev, fn, reg + 4, 0xFFFFFFFF) << 32;
  }
  decode_restore(dev, fn, cmd);
  if (mask_lo == 0) return 1; /* unimplemented */
  mask &= (lo & 1) ? ~3ull : ~0xFull;
  report_fn(dev, fn, kBarAddr[i], addr);
  report_fn(dev, fn, kBarSize[i], ~mask + 1);
  return is64 ? 2 : 1;
}

static void size_rom(uint32_t dev, uint32_t fn, int toggle) {
  const uint16_t cmd = decode_off(dev, fn, toggle);
  const uint32_t rom = cfg_read(dev, fn, 0x30, 4);
  const uint32_t mask = probe(dev, fn, 0x30, 0xFFFFFFFE) & 0xFFFFF800u;
  decode_restore(dev, fn, cmd);
  if (!mask) return;
  report_fn(dev, fn, "rom.addr", rom & 0xFFFFF800u);
  report_fn(dev, fn, "rom.size", (uint32_t)(~mask + 1));
}

static void walk_caps(uint32_t dev, uint32_t fn) {
  uint64_t caps = 0, ext = 0;
  if (cfg_read(dev, fn, 0x06, 2) & 0x10) {
    for (uint32_t at = cfg_read(dev, fn, 0x34, 1) & 0xFC; at && caps < 48;
         at = cfg_read(dev, fn, at + 1, 1) & 0xFC) {
      cfg_read(dev, fn, at, 1);
      caps++;
    }
  }
  if (cfg_path == CFG_ECAM) {
    for (uint32_t at = 0x100; at && ext < 64;) {
      const uint32_t h = cfg_read(dev, fn, at, 4);
      if (h == 0 || h == 0xFFFFFFFF) break;
      ext++;
      at = h >> 20;
    }
  }
  report_fn(dev, fn, "caps", caps);
  report_fn(dev, fn, "ext_caps", ext);
}

/* Sizes every BAR and the ROM: decode off and on around each (before 6.14) or once around them
 * all (batched). Reports go to the debug console, not to the device, so reporting with decode
 * off changes nothing here (Linux holds its printks until decode is back on). */
static void size_function(uint32_t dev, uint32_t fn) {
  command_writes = 0;
  const uint16_t cmd = decode_off(dev, fn, batched);
  for (int i = 0; i < 6;) i += size_bar(dev, fn, i, !batched);
  size_rom(dev, fn, !batched);
  decode_restore(dev, fn, cmd);
  report_fn(dev, fn, "cmd_writes", command_writes);
}

static void probe_function(uint32_t dev, uint32_t fn, uint32_t id) {
  for (uint32_t reg = 0; reg < 0x40; reg += 4) cfg_read(dev, fn, reg, 4);
  report_fn(dev, fn, "id", id);
  report_fn(dev, fn, "class", cfg_read(dev, fn, 0x08, 4) >> 8);
  walk_caps(dev, fn);
  if ((cfg_read(dev, fn, 0x0E, 1) & 0x7F) != 0) return; /* type 0 only */
  size_function(dev, fn);
}

static uint64_t found; /* functions, on every bus walked */
static void scan_bus(uint32_t bus);

/* PCI-to-PCI Bridge Architecture 1.2, 3.2.5.3-5, numbered as Linux's pci_scan_bridge does when
 * it assigns buses: primary = this bus, secondary = the next free number, subordinate 0xFF
 * while the buses behind are scanned (so the bridge forwards all of them), then the last number
 * used behind it. */
static void scan_bridge(uint32_t bus, uint32_t dev, uint32_t fn) {
  const uint32_t secondary = next_bus++;
  const uint32_t latency = cfg_read(dev, fn, 0x18, 4) & 0xFF000000u;
  cfg_write(dev, fn, 0x18, 4, latency | 0xFFu << 16 | secondary << 8 | bus);
  scan_bus(secondary);
  cfg_bus = bus;
  cfg_write(dev, fn, 0x1A, 1, next_bus - 1);
  report_fn(dev, fn, "secondary", secondary);
  report_fn(dev, fn, "subordinate", next_bus - 1);
}

static void scan_bus(uint32_t bus) {
  for (uint32_t dev = 0; dev < 32; ++dev) {
    for (uint32_t fn = 0; fn < 8; ++fn) {
      cfg_bus = bus;
      const uint32_t id = cfg_read(dev, fn, 0x00, 4);
      if ((id & 0xFFFF) == 0xFFFF || (id & 0xFFFF) == 0) continue;
      probe_function(dev, fn, id);
      found++;
      if (bridges && (cfg_read(dev, fn, 0x0E, 1) & 0x7F) == 1) scan_bridge(bus, dev, fn);
    }
  }
}

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  boot_marker();
  cfg_path = (arg & 1) ? CFG_ECAM : CFG_PIO;
  quiet = (arg >> 1) & 1;
  batched = (arg >> 2) & 1;
  bridges = (arg >> 3) & 1;
  next_bus = (uint32_t)(arg >> 8) & 0xFF;
  if (next_bus == 0) next_bus = 1;
  const uint32_t first_bus = next_bus;
  scan_bus(0);
  report("buses", next_bus - first_bus);
  report("path", cfg_path);
  report("sizing", (uint64_t)batched);
  report("functions", found);
  report("config_reads", cfg_counts.reads);
  report("config_writes", cfg_counts.writes);
  return 0;
}
