/* Entry of every freestanding test guest: rdi = guest argument, rsi = vCPU index, rsp set
 * by the VMM. vCPU 0 clears .bss; main's return value goes to the exit port. */
#include "include/pcivmm_guest_abi.h"
  .section .text.start, "ax"
  .globl _start
_start:
  test %rsi, %rsi
  jnz 1f
  mov %rdi, %r8
  lea __bss_start(%rip), %rdi
  lea __bss_end(%rip), %rcx
  sub %rdi, %rcx
  xor %eax, %eax
  rep stosb
  mov %r8, %rdi
1:
  call guest_main
  mov %eax, %eax
  mov $PCIVMM_EXIT_PORT, %dx
  out %eax, %dx
2:
  hlt
  jmp 2b
  .section .note.GNU-stack, "", @progbits
