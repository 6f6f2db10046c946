// Flag spelling shared by pcivmm and pcivmmctl: both accept --flag-name as well as absl's
// --flag_name, and their help texts print the dashed form.
#ifndef PCIVMM_API_FLAG_NAMES_H_
#define PCIVMM_API_FLAG_NAMES_H_

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace pcivmm::api {

// argv with every "--flag-name[=value]" before "--" spelt "--flag_name[=value]".
inline std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  return args;
}

}  // namespace pcivmm::api

#endif  // PCIVMM_API_FLAG_NAMES_H_
