#include "api/host_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pcivmm {

namespace {

// "VmRSS:\t    1234 kB" -> 1234 * 1024 when the line starts with `key`.
bool ParseKib(absl::string_view line, absl::string_view key, uint64_t* bytes) {
  if (!absl::ConsumePrefix(&line, key)) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  uint64_t kib = 0;
  if (parts.empty() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[0]), &kib)) return false;
  *bytes = kib * 1024;
  return true;
}

}  // namespace

absl::StatusOr<ProcessRss> ProcessRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  ProcessRss r;
  bool found = false;
  while (std::getline(in, line)) {
    found |= ParseKib(line, "VmRSS:", &r.total);
    ParseKib(line, "RssAnon:", &r.anon);
    ParseKib(line, "RssFile:", &r.file);
    ParseKib(line, "RssShmem:", &r.shmem);
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

uint64_t GuestRamResidentBytes(const GuestMemory& memory) {
  uint64_t n = 0;
  for (const GuestMemory::Region& r : memory.regions()) n += ResidentBytes(r.host, r.gpa.size());
  return n;
}

}  // namespace pcivmm
