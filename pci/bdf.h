#ifndef PCIVMM_PCI_BDF_H_
#define PCIVMM_PCI_BDF_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_format.h"

namespace pcivmm::pci {

// Functions on one bus: 32 devices x 8 functions.
inline constexpr size_t kDevfnsPerBus = 256;

// Bus, device, function.
struct Bdf {
  uint8_t bus = 0;
  uint8_t device = 0;    // 0..31
  uint8_t function = 0;  // 0..7

  // The function's index on its bus: device * 8 + function.
  constexpr uint16_t devfn() const { return static_cast<uint16_t>(device << 3 | function); }
  std::string ToString() const { return absl::StrFormat("%02x:%02x.%x", bus, device, function); }
  constexpr bool operator==(const Bdf&) const = default;
};

// How a configuration access reached the bus.
enum class ConfigPath : uint8_t { kPio = 0, kEcam = 1, kHost = 2 };
inline constexpr int kConfigPathCount = 3;
const char* ConfigPathName(ConfigPath path);

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_BDF_H_
