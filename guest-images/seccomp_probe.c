/* Writes the seccomp probe port (pcivmm --seccomp-test-probe), whose device model then makes a
 * system call the vCPU filter forbids. Under --seccomp=kill the VMM dies there; otherwise the
 * guest reports that it came back and exits 0. */
#include "guest.h"

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)arg;
  (void)cpu;
  outb(PCIVMM_TEST_SECCOMP_PORT, 1);
  puts("seccomp probe: the VMM came back\n");
  return 0;
}
