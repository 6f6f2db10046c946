/* `arg` byte writes to the test port, nothing else: the exit-cost benchmark's guest. */
#include "guest.h"

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  for (uint64_t i = 0; i < arg; ++i) outb(PCIVMM_TEST_PIO_PORT, (uint8_t)i);
  report("port_writes", arg);
  return 0;
}
