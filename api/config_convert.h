// pcivmm.v1.VmConfig (the config file and the API's schema) <-> VmSpec (what the VMM builds).
#ifndef PCIVMM_API_CONFIG_CONVERT_H_
#define PCIVMM_API_CONFIG_CONVERT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "api/vm_spec.h"
#include "pcivmm/v1/vm_config.pb.h"

namespace pcivmm::api {

inline constexpr uint64_t kMaxCostNsPerGib = 1'000'000'000;  // 1 s per GiB
inline constexpr uint64_t kDefaultGpuBar1Gib = 128;

// Parses the proto3 JSON mapping of a VmConfig. Unknown fields are errors (a typo in a
// config file must not be silently ignored). InvalidArgument with the parser's message.
absl::StatusOr<v1::VmConfig> ParseVmConfigJson(std::string_view json);
absl::StatusOr<v1::VmConfig> ReadVmConfigFile(const std::string& path);

// Overlays `overrides` on `base`: every field set in `overrides` wins; a non-empty device
// list replaces base's list; a guest of another kind replaces base's guest, one of the same
// kind is merged field by field.
void OverlayVmConfig(const v1::VmConfig& overrides, v1::VmConfig* base);

// Validates every field (InvalidArgument naming it, e.g. "machine.vcpus: 0 is outside
// 1..64") and applies the defaults.
absl::StatusOr<VmSpec> VmSpecFromConfig(const v1::VmConfig& config);

// The configuration a spec came from, with every default written out.
v1::VmConfig ConfigFromSpec(const VmSpec& spec);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_CONFIG_CONVERT_H_
