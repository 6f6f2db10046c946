// Reading a whole input file (a guest image, a kernel, an initrd, a config file) with a bound:
// the file must be a regular file no larger than the caller's limit, checked before a byte is
// read, so /dev/zero or a huge file is an error naming the input, not an allocation failure.
#ifndef PCIVMM_VMM_BASE_READ_FILE_H_
#define PCIVMM_VMM_BASE_READ_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace pcivmm::base {

// `what` names the input in errors ("--kernel", "--config-file"); `limit_reason` says where
// the limit comes from ("the guest RAM"). NotFound for a missing file, InvalidArgument for
// anything but a regular file or one over `max_bytes`, the errno otherwise.
absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, uint64_t max_bytes,
                                            absl::string_view what, absl::string_view limit_reason);

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_READ_FILE_H_
