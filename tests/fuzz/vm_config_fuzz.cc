// Fuzzes the configuration a user gives (--config-file: a VmConfig in JSON): any text is either
// refused with an error naming what is wrong or becomes a VmSpec; a valid one survives the
// round trip VmSpec -> VmConfig -> VmSpec unchanged. Never a crash.
#include <cstdint>
#include <string_view>

#include "api/config_convert.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pcivmm::fuzz::Check;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto config = pcivmm::api::ParseVmConfigJson(json);
  if (!config.ok()) {
    Check(!config.status().message().empty(), "a parse error says why");
    return 0;
  }
  auto spec = pcivmm::api::VmSpecFromConfig(*config);
  if (!spec.ok()) {
    Check(!spec.status().message().empty(), "a validation error names the field");
    return 0;
  }
  auto again = pcivmm::api::VmSpecFromConfig(pcivmm::api::ConfigFromSpec(*spec));
  Check(again.ok(), "the effective configuration of a valid spec is valid");
  Check(pcivmm::api::ConfigFromSpec(*again).SerializeAsString() ==
            pcivmm::api::ConfigFromSpec(*spec).SerializeAsString(),
        "the round trip is stable");
  return 0;
}
