// The "Key:   1234 kB" and "Key:\t2" lines of /proc files (/proc/self/status, /proc/meminfo).
#ifndef PCIVMM_VMM_BASE_PROC_FIELDS_H_
#define PCIVMM_VMM_BASE_PROC_FIELDS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcivmm::base {

// When `line` starts with `key` ("Seccomp:"), its number into *value; else false.
bool ParseProcNumber(absl::string_view line, absl::string_view key, uint64_t* value);
// When `line` starts with `key` ("VmRSS:"), its kB value in bytes into *bytes; else false.
bool ParseProcKib(absl::string_view line, absl::string_view key, uint64_t* bytes);

// The first `key` line of `path`: its number, or (Kib) its kB value in bytes. Unavailable when
// there is none.
absl::StatusOr<uint64_t> ReadProcNumber(const std::string& path, absl::string_view key);
absl::StatusOr<uint64_t> ReadProcKib(const std::string& path, absl::string_view key);

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_PROC_FIELDS_H_
