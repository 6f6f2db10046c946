// pcivmm's --help and --version texts.
#ifndef PCIVMM_API_DAEMON_CLI_USAGE_H_
#define PCIVMM_API_DAEMON_CLI_USAGE_H_

#include <span>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace pcivmm::api {

struct FlagGroup {
  absl::string_view title;
  std::vector<absl::string_view> flags;  // absl names (underscores)
};

// A flag's name as users write it: "bar_policy" -> "bar-policy".
std::string DashedFlagName(absl::string_view name);

// `usage`, then each group's flags as "  --flag-name=DEFAULT" over their help text. Flags
// defined in a file ending in `file_suffix` that no group names are listed under "Other", so a
// new flag is never hidden.
std::string FormatUsage(absl::string_view usage, std::span<const FlagGroup> groups,
                        absl::string_view file_suffix);

// pcivmm's version, git commit, build type and the KVM API version (the headers' and, when
// /dev/kvm opens, the kernel's, with its flavour).
std::string VersionText();

}  // namespace pcivmm::api

#endif  // PCIVMM_API_DAEMON_CLI_USAGE_H_
