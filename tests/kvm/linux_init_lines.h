// The Linux guest's /init reports on the console in lines "PCIVMM <kind> <text>"
// (guest-images/linux/init); the KVM tests read them back here.
#ifndef PCIVMM_TESTS_KVM_LINUX_INIT_LINES_H_
#define PCIVMM_TESTS_KVM_LINUX_INIT_LINES_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "vmm/platform/linux_vm.h"

namespace pcivmm {

// The console lines that start with "PCIVMM <kind> ", without that prefix.
inline std::vector<std::string> InitLines(platform::LinuxVm& vm, std::string_view kind) {
  std::vector<std::string> out;
  const std::string prefix = absl::StrFormat("PCIVMM %s ", kind);
  for (absl::string_view line : absl::StrSplit(vm.devices().uart().output_tail(), '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.rfind(prefix, 0) == 0) out.emplace_back(line.substr(prefix.size()));
  }
  return out;
}

}  // namespace pcivmm

#endif  // PCIVMM_TESTS_KVM_LINUX_INIT_LINES_H_
