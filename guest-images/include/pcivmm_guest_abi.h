/* The contract between pcivmm and its freestanding test guests (C and C++). */
#ifndef PCIVMM_GUEST_ABI_H_
#define PCIVMM_GUEST_ABI_H_

/* Flat binary loaded here and entered in 64-bit mode with [0, 512 GiB) identity-mapped,
 * rdi = the guest argument (--guest-arg), rsi = the vCPU index. */
#define PCIVMM_GUEST_LOAD_ADDR 0x100000
/* vCPU n's stack top is PCIVMM_GUEST_STACK_TOP - n * PCIVMM_GUEST_STACK_SIZE. */
#define PCIVMM_GUEST_STACK_TOP 0x80000
#define PCIVMM_GUEST_STACK_SIZE 0x4000

/* Bytes written here go to the VMM's console (the Bochs/QEMU 0xE9 convention). */
#define PCIVMM_DEBUG_CONSOLE_PORT 0xE9
/* A 32-bit write here stops the VM; the value becomes the VMM's exit status. */
#define PCIVMM_EXIT_PORT 0xF4

/* The boot-done marker: one byte PCIVMM_BOOT_MARKER_VALUE written here tells the VMM (and
 * the API's event feed) that the guest is up. Test guests and the Linux guest's /init write it;
 * vmm/base/platform_layout.h takes kBootMarkerPort from here. */
#define PCIVMM_BOOT_MARKER_PORT 0x610
#define PCIVMM_BOOT_MARKER_VALUE 123
/* Before the marker, the guest may write its uptime (CLOCK_BOOTTIME) in microseconds here as
 * one dword: the VMM's boot profile then says how much of the boot was the guest's own. */
#define PCIVMM_BOOT_UPTIME_PORT (PCIVMM_BOOT_MARKER_PORT + 4)

/* Test devices that the KVM tests and benchmarks attach (not part of a normal VM). */
#define PCIVMM_TEST_PIO_PORT 0x510          /* 8 ports: echo register file */
#define PCIVMM_TEST_STREAM_PORT 0x518       /* byte sink/source for rep outs/ins */
#define PCIVMM_TEST_SECCOMP_PORT 0x519      /* --seccomp-test-probe: a write, a forbidden syscall */
#define PCIVMM_TEST_MMIO_BASE 0xD0000000ull /* 4 KiB scratch MMIO device */
#define PCIVMM_TEST_ROM_BASE 0xD0100000ull  /* read-only memory slot, 64 KiB */
#define PCIVMM_TEST_ROM_SIZE 0x10000

#endif /* PCIVMM_GUEST_ABI_H_ */
