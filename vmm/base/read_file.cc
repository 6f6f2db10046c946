#include "vmm/base/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_format.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::base {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Reads exactly `size` bytes (a file that shrank meanwhile is an error, one that grew is cut).
absl::StatusOr<std::string> ReadAll(int fd, size_t size, absl::string_view what,
                                    const std::string& path) {
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, out.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrFormat("%s %s: read", what, path));
    if (n == 0) {
      return absl::DataLossError(
          absl::StrFormat("%s %s: shrank to %d bytes while being read", what, path, done));
    }
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> ReadBoundedFile(const std::string& path, uint64_t max_bytes,
                                            absl::string_view what,
                                            absl::string_view limit_reason) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(absl::StrFormat("%s %s: no such file", what, path));
    return absl::ErrnoToStatus(err, absl::StrFormat("%s %s: open", what, path));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("%s %s: stat", what, path));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: %s; expected a regular file", what, path, FileKind(st.st_mode)));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: %d bytes, over the limit of %d bytes (%s)", what, path, size,
                        max_bytes, limit_reason));
  }
  return ReadAll(fd.get(), static_cast<size_t>(size), what, path);
}

}  // namespace pcivmm::base
