// Small helpers shared by the benchmarks.
#ifndef PCIVMM_TESTS_BENCH_BENCH_UTIL_H_
#define PCIVMM_TESTS_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_flavour.h"

namespace pcivmm::bench {

inline double NsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Writes `json` (an object) to `path` (if set) with a "kvm" member first, which says on which
// KVM and where the figures were measured (vmm/kvm/kvm_flavour.h), and echoes it, so the run log
// has it too.
inline void EmitJson(const std::string& path, std::string json) {
  const size_t open = json.find('{');
  if (open != std::string::npos) json.insert(open + 1, "\"kvm\": " + kvm::ThisKvmJson() + ", ");
  if (!path.empty()) {
    std::ofstream(path) << json;
    std::printf("wrote %s\n", path.c_str());
  }
  std::fputs(json.c_str(), stdout);
}

}  // namespace pcivmm::bench

#endif  // PCIVMM_TESTS_BENCH_BENCH_UTIL_H_
