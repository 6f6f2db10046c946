// The x86 platform pcivmm presents to a Linux guest: fixed addresses, ports and IRQs shared by
// the boot loader, the ACPI tables and the legacy devices (vmm/ARCHITECTURE.md, "Guest physical
// memory map").
#ifndef PCIVMM_VMM_BASE_PLATFORM_LAYOUT_H_
#define PCIVMM_VMM_BASE_PLATFORM_LAYOUT_H_

#include <cstdint>

#include "guest-images/include/pcivmm_guest_abi.h"

namespace pcivmm::base::layout {

// Low memory (below 640 KiB). 0x500..0x6FFF hold the boot GDT and page tables (long_mode.h).
inline constexpr uint64_t kZeroPageAddr = 0x7000;  // struct boot_params
inline constexpr uint64_t kCmdlineAddr = 0x20000;  // kernel command line, NUL-terminated
inline constexpr uint64_t kCmdlineMax = 0x10000;   // bytes reserved for it
inline constexpr uint64_t kBootStackTop = 0x8FF0;  // initial rsp for the 64-bit entry
inline constexpr uint64_t kLowRamEnd =
    0x9FC00;  // end of the first e820 RAM entry (640 KiB - 1 KiB EBDA)
inline constexpr uint64_t kKernelLoadAddr = 0x100000;  // protected-mode kernel (1 MiB)

// Firmware area: the ACPI tables, RSDP first (ACPI 6.4, 5.2.5.1: the RSDP is found by
// scanning 0xE0000..0xFFFFF on 16-byte boundaries). Reserved in e820.
inline constexpr uint64_t kAcpiBase = 0xE0000;
inline constexpr uint64_t kAcpiSize = 0x20000;

// Interrupt controllers (KVM in-kernel irqchip).
inline constexpr uint64_t kIoapicAddr = 0xFEC0'0000;
inline constexpr uint64_t kLapicAddr = 0xFEE0'0000;
inline constexpr int kIoapicPins = 24;

// 16550 UART (COM1).
inline constexpr uint16_t kCom1Port = 0x3F8;
inline constexpr uint32_t kCom1Irq = 4;

// CMOS/RTC index and data ports.
inline constexpr uint16_t kCmosPort = 0x70;

// i8042 keyboard controller: data port and status/command port (Linux's "reboot=k" writes the
// pulse-reset command to the latter).
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;

// ACPI fixed hardware (FADT): PM1a event block (4 bytes: status, enable), PM1a control
// block (2 bytes: SCI_EN, SLP_TYP, SLP_EN) and the reset register (write kAcpiResetValue).
inline constexpr uint16_t kAcpiPm1aEvtPort = 0x600;
inline constexpr uint16_t kAcpiPm1aCntPort = 0x604;
inline constexpr uint16_t kAcpiResetPort = 0x608;
inline constexpr uint8_t kAcpiResetValue = 0x01;
inline constexpr uint32_t kAcpiSciIrq = 9;
inline constexpr uint8_t kAcpiS5SlpTyp = 5;  // \_S5 package value; SLP_TYP written on power-off

// Boot-done marker: the guest's init writes one byte here (like Firecracker's boot timer);
// the VMM timestamps boot-to-init. The guest ABI defines it.
inline constexpr uint16_t kBootMarkerPort = PCIVMM_BOOT_MARKER_PORT;
inline constexpr uint8_t kBootMarkerValue = PCIVMM_BOOT_MARKER_VALUE;

}  // namespace pcivmm::base::layout

#endif  // PCIVMM_VMM_BASE_PLATFORM_LAYOUT_H_
