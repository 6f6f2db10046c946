#include "api/host_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "vmm/base/proc_fields.h"

namespace pcivmm::api {

absl::StatusOr<ProcessRss> ProcessRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  ProcessRss r;
  bool found = false;
  while (std::getline(in, line)) {
    found |= base::ParseProcKib(line, "VmRSS:", &r.total);
    base::ParseProcKib(line, "RssAnon:", &r.anon);
    base::ParseProcKib(line, "RssFile:", &r.file);
    base::ParseProcKib(line, "RssShmem:", &r.shmem);
  }
  if (!found) return absl::UnavailableError("/proc/self/status has no VmRSS line");
  return r;
}

uint64_t ResidentBytes(const uint8_t* host, uint64_t size) {
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  constexpr uint64_t kChunk = 1ull << 30;  // bounds the vector: 256 Ki entries per chunk
  std::vector<unsigned char> vec;
  uint64_t resident = 0;
  for (uint64_t off = 0; off < size; off += kChunk) {
    const uint64_t len = std::min(kChunk, size - off);
    vec.assign((len + page - 1) / page, 0);
    // mincore only reads the page tables/page cache state of our own mapping.
    if (::mincore(const_cast<uint8_t*>(host + off), len, vec.data()) != 0) continue;
    resident += page * static_cast<uint64_t>(std::count_if(
                           vec.begin(), vec.end(), [](unsigned char v) { return (v & 1) != 0; }));
  }
  return resident;
}

uint64_t GuestRamResidentBytes(const kvm::GuestMemory& memory) {
  uint64_t n = 0;
  for (const kvm::GuestMemory::Region& r : memory.regions())
    n += ResidentBytes(r.host, r.gpa.size());
  return n;
}

}  // namespace pcivmm::api
