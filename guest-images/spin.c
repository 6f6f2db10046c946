/* A guest that never finishes booting, for pcivmm --boot-timeout: every vCPU prints one line
 * and spins (a PAUSE loop, no exits) until the VMM stops it. With arg 1, vCPU 0 writes the
 * boot marker first: the same spin is then a booted guest that the watchdog leaves alone. */
#include "guest.h"

/* The vCPUs print in turn, 0 first: a console write can exit once per byte, so lines printed
 * at once would interleave. The last line is the last vCPU's. */
static volatile uint64_t turn;

static void spin_forever(void) {
  for (;;) __asm__ volatile("pause");
}

int guest_main(uint64_t arg, uint64_t cpu) {
  char line[] = "spin: vcpu ? spins without the boot marker\n";
  char booted[] = "spin: vcpu ? spins after the boot marker\n";
  char* text = arg == 1 ? booted : line;
  text[11] = cpu < 10 ? (char)('0' + cpu) : '+';
  if (arg == 1 && cpu == 0) boot_marker();
  while (turn != cpu) __asm__ volatile("pause");
  puts(text);
  turn = cpu + 1;
  spin_forever();
  return 0;
}
