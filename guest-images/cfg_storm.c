/* Writes the boot marker first, then reads one dword of a present function (00:01.0,
 * vendor/device) `arg & 0xFFFFFFFF` times through the path in bit 32 of arg (0 = PIO,
 * 1 = ECAM: trapping or fast, as the VMM serves it), then one absent function's ID and one
 * absent word. Reports the count and what it read. */
#include "pci_cfg.h"

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  boot_marker();
  cfg_path = (arg >> 32) & 1 ? CFG_ECAM : CFG_PIO;
  const uint64_t n = arg & 0xFFFFFFFFu;
  const uint32_t first = cfg_read(1, 0, 0, 4);
  uint64_t mismatches = 0;
  for (uint64_t i = 1; i < n; ++i) mismatches += cfg_read(1, 0, 0, 4) != first;
  const uint64_t storm_reads = cfg_counts.reads;
  report("storm_reads", storm_reads);
  report("id", first);
  report("mismatches", mismatches);
  report("absent_id", cfg_read(31, 7, 0, 4));
  report("absent_word", cfg_read(0, 5, 0x2, 2));
  report("config_reads", cfg_counts.reads);
  return mismatches != 0;
}
