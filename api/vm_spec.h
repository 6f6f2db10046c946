// A validated VM configuration in C++ terms: what the daemon builds a VM from.
#ifndef PCIVMM_API_VM_SPEC_H_
#define PCIVMM_API_VM_SPEC_H_

#include <cstdint>
#include <string>
#include <variant>

#include "vmm/platform/linux_boot.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm::api {

// A freestanding test guest (a flat binary from guest-images/).
struct TestGuestConfig {
  std::string image_path;
  uint64_t arg = 0;
};

struct VmSpec {
  platform::MachineConfig machine;  // console_echo is set by whoever opens console_path
  platform::PciConfig pci;
  bool test_devices = true;
  std::variant<TestGuestConfig, platform::LinuxBootConfig> guest;
  std::string console_path;  // empty: stdout
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_VM_SPEC_H_
