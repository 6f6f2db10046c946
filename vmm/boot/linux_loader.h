// Direct Linux boot: the x86 boot protocol's bzImage loader and zero page (boot_params).
// Linux Documentation/arch/x86/boot.rst ("THE LINUX/x86 BOOT PROTOCOL") is the spec quoted.
#ifndef PCIVMM_VMM_BOOT_LINUX_LOADER_H_
#define PCIVMM_VMM_BOOT_LINUX_LOADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "mmio/address_range.h"
#include "vmm/kvm/guest_memory.h"

namespace pcivmm::boot {

// The setup-header fields the loader uses, read from a bzImage.
struct SetupHeader {
  uint16_t version = 0;  // boot protocol, e.g. 0x020F
  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  uint32_t initrd_addr_max = 0;  // highest address the initrd's last byte may occupy
  uint32_t cmdline_size = 0;     // longest command line, without the NUL
  uint32_t init_size = 0;        // bytes the kernel needs from its load address
  size_t setup_bytes = 0;        // the real-mode part: (setup_sects + 1) * 512
  size_t header_end = 0;         // image offset one past the setup header
};

inline constexpr uint16_t kMinBootProtocol = 0x0206;

// Validates a bzImage: "HdrS" magic, protocol >= 2.06, LOADED_HIGH, a 64-bit entry point
// (XLF_KERNEL_64) and a protected-mode part inside the file. InvalidArgument names the fault.
absl::StatusOr<SetupHeader> ParseBzImage(absl::Span<const uint8_t> image);

// An e820 entry (boot_params.e820_table): type 1 RAM, 2 reserved.
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

// RAM from `memory` (the first MiB split around the EBDA and the firmware area) plus the
// given reserved ranges, sorted by address.
std::vector<E820Entry> BuildE820(const kvm::GuestMemory& memory,
                                 const std::vector<mmio::AddressRange>& reserved);

struct LinuxImages {
  std::string kernel;  // bzImage bytes
  std::string initrd;  // may be empty
  std::string cmdline;
};

struct LinuxEntry {
  uint64_t rip;        // the 64-bit entry point: load address + 0x200
  uint64_t zero_page;  // boot_params, passed in rsi
  uint64_t initrd_gpa;
  uint64_t initrd_size;
};

// Loads the kernel at 1 MiB, the initrd as high as initrd_addr_max and RAM below 4 GiB
// allow, the command line, and a zero page with `e820` and the RSDP address.
absl::StatusOr<LinuxEntry> LoadLinux(const kvm::GuestMemory& memory, const LinuxImages& images,
                                     const std::vector<E820Entry>& e820, uint64_t rsdp_gpa);

}  // namespace pcivmm::boot

#endif  // PCIVMM_VMM_BOOT_LINUX_LOADER_H_
