/* The smallest guest: greets, reports which vCPU it ran on, exits 0 (or arg, if given). */
#include "guest.h"

int guest_main(uint64_t arg, uint64_t cpu) {
  puts("hello from the pcivmm test guest\n");
  report("cpu", cpu);
  return (int)arg;
}
