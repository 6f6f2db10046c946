#include "vmm/base/proc_fields.h"

#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pcivmm::base {

bool ParseProcNumber(absl::string_view line, absl::string_view key, uint64_t* value) {
  if (!absl::ConsumePrefix(&line, key)) return false;
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  return !parts.empty() && absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[0]), value);
}

bool ParseProcKib(absl::string_view line, absl::string_view key, uint64_t* bytes) {
  uint64_t kib = 0;
  if (!ParseProcNumber(line, key, &kib)) return false;
  *bytes = kib * 1024;
  return true;
}

absl::StatusOr<uint64_t> ReadProcNumber(const std::string& path, absl::string_view key) {
  std::ifstream in(path);
  uint64_t value = 0;
  for (std::string line; std::getline(in, line);) {
    if (ParseProcNumber(line, key, &value)) return value;
  }
  return absl::UnavailableError(absl::StrFormat("%s: no %s line", path, key));
}

absl::StatusOr<uint64_t> ReadProcKib(const std::string& path, absl::string_view key) {
  absl::StatusOr<uint64_t> kib = ReadProcNumber(path, key);
  if (!kib.ok()) return kib.status();
  return *kib * 1024;
}

}  // namespace pcivmm::base
