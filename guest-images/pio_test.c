/* Port I/O of every width against the echo register file, then string I/O (rep outsb /
 * rep insb) against the stream port. Reports how many port accesses it made, per port and
 * direction, so the test can compare them with the VMM's exit counters. */
#include "guest.h"

#define ROUNDS 16
#define STREAM_BYTES 3000 /* crosses page boundaries: KVM may split it into several exits */

static uint8_t out_buf[STREAM_BYTES];
static uint8_t in_buf[STREAM_BYTES];

static int widths(void) {
  int bad = 0;
  for (uint32_t i = 0; i < ROUNDS; ++i) {
    outb(PCIVMM_TEST_PIO_PORT, (uint8_t)(0xA0 + i));
    bad += inb(PCIVMM_TEST_PIO_PORT) != (uint8_t)(0xA0 + i);
    outw(PCIVMM_TEST_PIO_PORT + 2, (uint16_t)(0xBEE0 + i));
    bad += inw(PCIVMM_TEST_PIO_PORT + 2) != (uint16_t)(0xBEE0 + i);
    outl(PCIVMM_TEST_PIO_PORT + 4, 0xC0DE0000u + i);
    bad += inl(PCIVMM_TEST_PIO_PORT + 4) != 0xC0DE0000u + i;
  }
  return bad;
}

static int stream(void) {
  for (uint32_t i = 0; i < STREAM_BYTES; ++i) out_buf[i] = (uint8_t)(i * 7 + 1);
  outsb(PCIVMM_TEST_STREAM_PORT, out_buf, STREAM_BYTES);
  insb(PCIVMM_TEST_STREAM_PORT, in_buf, STREAM_BYTES);
  int bad = 0;
  /* The stream device answers reads with the bytes 0, 1, 2, ... (mod 256). */
  for (uint32_t i = 0; i < STREAM_BYTES; ++i) bad += in_buf[i] != (uint8_t)i;
  return bad;
}

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)arg;
  (void)cpu;
  const int bad_widths = widths();
  const int bad_stream = stream();
  report("port_out_each", ROUNDS); /* outs to each of 0x510, 0x512, 0x514 */
  report("port_in_each", ROUNDS);
  report("stream_bytes", STREAM_BYTES);
  report("bad_widths", (uint64_t)bad_widths);
  report("bad_stream", (uint64_t)bad_stream);
  return bad_widths || bad_stream;
}
