/* Exercises a real device passed through with VFIO at 00:<slot>.0. arg:
 *   bits 0-7 mode, 8-15 slot, 16-23 BAR index, bit 24: config through ECAM (else PIO),
 *   bits 32-63: a count (storm).
 * modes:
 *   0 ids:    IDs, class, header type, the BAR's address and its size by sizing
 *   1 ram:    read the host's pattern at BAR+0 and +8, write GUEST_PATTERN at BAR+0x1000
 *             and read it back (ivshmem's RAM BAR)
 *   2 edu:    identification register (+0x00), liveness (+0x04: write x, read ~x), twice
 *   3 decode: read BAR+0 with memory decode on, off, and on again
 *   4 owned:  write what the VMM owns (BARs, ROM BAR, decode bits, interrupt line, header
 *             type), then put the BARs and decode back; report the guest's view
 *   5 storm:  read `count` qwords over the BAR's first 2 MiB at most (cycles by rdtsc)
 *   6 irq:    edu interrupts: MSI (vector 0x40) twice, then INTx (IOAPIC pin GSI in bits
 *             32-39, vector 0x41) twice; needs the in-kernel irqchip */
#include "pci_cfg.h"

#define CMD_MEMORY 0x2
#define GUEST_PATTERN 0x600DF00DC0FFEE00ull
#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define LAPIC 0xFEE00000ull
#define IOAPIC 0xFEC00000ull
#define MSI_VECTOR 0x40
#define INTX_VECTOR 0x41

static uint32_t slot;
static int bar;

static uint64_t bar_address(void) {
  const uint32_t low = cfg_read(slot, 0, 0x10 + 4 * bar, 4);
  uint64_t addr = low & ~0xFull;
  if ((low & 0x6) == 0x4) addr |= (uint64_t)cfg_read(slot, 0, 0x14 + 4 * bar, 4) << 32;
  return addr;
}

static uint64_t bar_size(void) {
  const uint16_t cmd = (uint16_t)cfg_read(slot, 0, 0x04, 2);
  cfg_write(slot, 0, 0x04, 2, cmd & ~CMD_MEMORY);
  const uint32_t reg = 0x10 + 4 * bar;
  const uint32_t low = cfg_read(slot, 0, reg, 4);
  const int is64 = (low & 0x6) == 0x4;
  const uint32_t high = is64 ? cfg_read(slot, 0, reg + 4, 4) : 0;
  cfg_write(slot, 0, reg, 4, 0xFFFFFFFF);
  if (is64) cfg_write(slot, 0, reg + 4, 4, 0xFFFFFFFF);
  uint64_t mask = cfg_read(slot, 0, reg, 4) & ~0xFull;
  mask |= is64 ? (uint64_t)cfg_read(slot, 0, reg + 4, 4) << 32 : 0xFFFFFFFF00000000ull;
  cfg_write(slot, 0, reg, 4, low);
  if (is64) cfg_write(slot, 0, reg + 4, 4, high);
  cfg_write(slot, 0, 0x04, 2, cmd);
  return ~mask + 1;
}

static void ids(void) {
  report("id", cfg_read(slot, 0, 0x00, 4));
  report("class_rev", cfg_read(slot, 0, 0x08, 4));
  report("header_type", cfg_read(slot, 0, 0x0E, 1));
  report("subsystem", cfg_read(slot, 0, 0x2C, 4));
  report("bar", bar_address());
  report("bar_size", bar_size());
  report("bar_after_sizing", bar_address());
}

static void ram(uint64_t base) {
  report("host_pattern0", mmio_read64(base));
  report("host_pattern1", mmio_read64(base + 8));
  mmio_write64(base + 0x1000, GUEST_PATTERN);
  report("readback", mmio_read64(base + 0x1000));
}

static void edu(uint64_t base) {
  report("edu_id", mmio_read32(base + EDU_ID));
  mmio_write32(base + EDU_LIVENESS, 0x12345678);
  report("edu_live1", mmio_read32(base + EDU_LIVENESS));
  mmio_write32(base + EDU_LIVENESS, 0xA5A5A5A5);
  report("edu_live2", mmio_read32(base + EDU_LIVENESS));
}

static void decode(uint64_t base) {
  const uint16_t cmd = (uint16_t)cfg_read(slot, 0, 0x04, 2);
  report("decode_on", mmio_read32(base));
  cfg_write(slot, 0, 0x04, 2, cmd & ~CMD_MEMORY);
  report("decode_off", mmio_read32(base));
  report("decode_off64", mmio_read64(base + 8));
  cfg_write(slot, 0, 0x04, 2, cmd);
  report("decode_on_again", mmio_read32(base));
}

static void owned(void) {
  const uint16_t cmd = (uint16_t)cfg_read(slot, 0, 0x04, 2);
  uint32_t saved[6];
  for (int i = 0; i < 6; ++i) saved[i] = cfg_read(slot, 0, 0x10 + 4 * i, 4);
  cfg_write(slot, 0, 0x04, 2, cmd & ~(CMD_MEMORY | 0x1));
  for (int i = 0; i < 6; ++i) cfg_write(slot, 0, 0x10 + 4 * i, 4, 0xFFFFFFFF);
  cfg_write(slot, 0, 0x30, 4, 0xFFFFFFFF);
  cfg_write(slot, 0, 0x3C, 1, 0x0A);
  cfg_write(slot, 0, 0x0E, 1, 0x7F);
  report("cmd_while_off", cfg_read(slot, 0, 0x04, 2));
  report("rom_sized", cfg_read(slot, 0, 0x30, 4));
  for (int i = 0; i < 6; ++i) cfg_write(slot, 0, 0x10 + 4 * i, 4, saved[i]);
  cfg_write(slot, 0, 0x04, 2, cmd);
  report("interrupt_line", cfg_read(slot, 0, 0x3C, 1));
  report("header_type", cfg_read(slot, 0, 0x0E, 1));
  report("bar_restored", bar_address());
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t)hi << 32 | lo;
}

static void storm(uint64_t base, uint64_t count) {
  const uint64_t size = bar_size();
  const uint64_t span = size < (2u << 20) ? size : 2u << 20;
  uint64_t x = 0;
  for (uint64_t off = 0; off < span; off += 4096) x ^= mmio_read64(base + off);  // fault in
  const uint64_t t0 = rdtsc();
  for (uint64_t i = 0; i < count; ++i) x ^= mmio_read64(base + ((i * 8) & (span - 1)));
  report("storm_cycles", rdtsc() - t0);
  report("storm_reads", count);
  report("storm_xor", x);
}

/* --- interrupts ------------------------------------------------------------------------- */

struct interrupt_frame;
static volatile uint64_t msi_count, intx_count;
static uint64_t edu_base;

static void lapic_eoi(void) { mmio_write32(LAPIC + 0xB0, 0); }

__attribute__((interrupt)) static void msi_handler(struct interrupt_frame* f) {
  (void)f;
  msi_count++;
  lapic_eoi();
}

/* Level-triggered: the line stays up until the device is acknowledged, before the EOI. */
__attribute__((interrupt)) static void intx_handler(struct interrupt_frame* f) {
  (void)f;
  intx_count++;
  mmio_write32(edu_base + EDU_IRQ_ACK, mmio_read32(edu_base + EDU_IRQ_STATUS));
  lapic_eoi();
}

static uint8_t idt[256 * 16] __attribute__((aligned(16)));

static void set_gate(int vector, void (*handler)(struct interrupt_frame*)) {
  const uint64_t h = (uint64_t)handler;
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  uint8_t* g = idt + vector * 16;
  g[0] = (uint8_t)h;
  g[1] = (uint8_t)(h >> 8);
  g[2] = (uint8_t)cs;
  g[3] = (uint8_t)(cs >> 8);
  g[4] = 0;
  g[5] = 0x8E; /* present, DPL 0, 64-bit interrupt gate */
  for (int i = 0; i < 6; ++i) g[6 + i] = (uint8_t)(h >> (16 + 8 * i));
}

static void setup_interrupts(void) {
  set_gate(MSI_VECTOR, msi_handler);
  set_gate(INTX_VECTOR, intx_handler);
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr = {sizeof(idt) - 1, (uint64_t)idt};
  __asm__ volatile("lidt %0" ::"m"(idtr));
  mmio_write32(LAPIC + 0xF0, 0x1FF); /* spurious vector register: APIC software enable */
  mmio_write32(LAPIC + 0x80, 0);     /* task priority 0 */
  __asm__ volatile("sti");
}

static int wait_for(volatile uint64_t* counter, uint64_t want) {
  for (uint64_t spin = 0; spin < 20000000 && *counter < want; ++spin) __asm__ volatile("pause");
  return *counter >= want;
}

static uint32_t find_cap(uint8_t id) {
  uint32_t at = cfg_read(slot, 0, 0x34, 1) & 0xFC;
  for (int hops = 0; at != 0 && hops < 48; ++hops) {
    if (cfg_read(slot, 0, at, 1) == id) return at;
    at = cfg_read(slot, 0, at + 1, 1) & 0xFC;
  }
  return 0;
}

static void irq(uint64_t base, uint32_t gsi) {
  edu_base = base;
  setup_interrupts();
  const uint32_t msi = find_cap(0x05);
  report("msi_cap", msi);
  /* An MSI is a memory write by the device: bus mastering must be on (it reaches the device). */
  cfg_write(slot, 0, 0x04, 2, cfg_read(slot, 0, 0x04, 2) | 0x4);
  if (msi != 0) {
    const uint16_t ctrl = (uint16_t)cfg_read(slot, 0, msi + 2, 2);
    const uint32_t data_at = (ctrl & 0x80) ? msi + 12 : msi + 8;
    cfg_write(slot, 0, msi + 4, 4, (uint32_t)LAPIC); /* destination APIC 0 */
    if (ctrl & 0x80) cfg_write(slot, 0, msi + 8, 4, 0);
    cfg_write(slot, 0, data_at, 2, MSI_VECTOR); /* fixed delivery, edge */
    cfg_write(slot, 0, msi + 2, 2, (ctrl & ~0x70) | 1);
    mmio_write32(base + EDU_IRQ_RAISE, 1);
    wait_for(&msi_count, 1);
    mmio_write32(base + EDU_IRQ_ACK, 1);
    mmio_write32(base + EDU_IRQ_RAISE, 2);
    wait_for(&msi_count, 2);
    mmio_write32(base + EDU_IRQ_ACK, 2);
    report("msi_irqs", msi_count);
    cfg_write(slot, 0, msi + 2, 2, ctrl & ~1);
  }
  /* IOAPIC redirection entry: vector, level-triggered (bit 15), active low (bit 13),
   * unmasked, destination APIC 0. */
  mmio_write32(IOAPIC, 0x10 + 2 * gsi);
  mmio_write32(IOAPIC + 0x10, INTX_VECTOR | (1u << 15) | (1u << 13));
  mmio_write32(IOAPIC, 0x11 + 2 * gsi);
  mmio_write32(IOAPIC + 0x10, 0);
  mmio_write32(base + EDU_IRQ_RAISE, 4);
  wait_for(&intx_count, 1);
  mmio_write32(base + EDU_IRQ_RAISE, 8);
  wait_for(&intx_count, 2);
  report("intx_irqs", intx_count);
  report("msi_irqs_after", msi_count);
}

int guest_main(uint64_t arg, uint64_t cpu) {
  (void)cpu;
  const int mode = (int)(arg & 0xFF);
  slot = (uint32_t)((arg >> 8) & 0xFF);
  bar = (int)((arg >> 16) & 0xFF);
  cfg_path = (arg >> 24) & 1 ? CFG_ECAM : CFG_PIO;
  const uint64_t base = bar_address();
  if (mode == 0) ids();
  if (mode == 1) ram(base);
  if (mode == 2) edu(base);
  if (mode == 3) decode(base);
  if (mode == 4) owned();
  if (mode == 5) storm(base, arg >> 32);
  if (mode == 6) irq(base, (uint32_t)((arg >> 32) & 0xFF));
  report("config_reads", cfg_counts.reads);
  report("config_writes", cfg_counts.writes);
  return 0;
}
