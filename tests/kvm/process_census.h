// What a process holds, for soak tests: open fds, threads, resident memory.
#ifndef PCIVMM_TESTS_KVM_PROCESS_CENSUS_H_
#define PCIVMM_TESTS_KVM_PROCESS_CENSUS_H_

#include <dirent.h>
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "vmm/base/proc_fields.h"

namespace pcivmm::testing {

inline int CountEntries(const char* dir) {
  int n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n - (std::string(dir) == "/proc/self/fd" ? 1 : 0);  // the DIR's own fd
}

// VmRSS after giving freed heap back to the kernel (malloc_trim): what remains is held.
inline uint64_t RssKib() {
  ::malloc_trim(0);
  return *base::ReadProcKib("/proc/self/status", "VmRSS:") >> 10;
}

struct ProcessCensus {
  int fds = CountEntries("/proc/self/fd");
  int threads = CountEntries("/proc/self/task");
  uint64_t rss_kib = RssKib();

  std::string ToString() const {
    char s[96];
    std::snprintf(s, sizeof(s), "fds %d, threads %d, RSS %llu KiB", fds, threads,
                  static_cast<unsigned long long>(rss_kib));
    return s;
  }
};

// The soak tests' assertion: after `runs` VMs, fds and threads are where they were and RSS
// grew by less than 2 MiB.
inline void ExpectBackToBaseline(const ProcessCensus& before, int runs, const char* what) {
  const ProcessCensus after;
  EXPECT_EQ(after.fds, before.fds);
  EXPECT_EQ(after.threads, before.threads);
  const uint64_t grown = after.rss_kib - std::min(before.rss_kib, after.rss_kib);
  EXPECT_LT(grown, 2048u) << "RSS grew by " << grown << " KiB over " << runs << " " << what;
  std::printf("SOAK: %d %s; before: %s; after: %s\n", runs, what, before.ToString().c_str(),
              after.ToString().c_str());
}

}  // namespace pcivmm::testing

#endif  // PCIVMM_TESTS_KVM_PROCESS_CENSUS_H_
