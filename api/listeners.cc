#include "api/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
namespace {

constexpr mode_t kSocketMode = 0600;
constexpr int kBacklog = 64;

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket %s: longer than %d bytes", path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Is a server accepting on `path`? connect() answers: ECONNREFUSED means a stale file.
absl::StatusOr<bool> SomeoneListens(const std::string& path) {
  PCIVMM_ASSIGN_OR_RETURN(const sockaddr_un addr, UnixAddress(path));
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  // sockaddr_un is the sockaddr for AF_UNIX; connect reads only sizeof(addr) bytes.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return true;
  }
  if (errno == ECONNREFUSED || errno == ENOENT) return false;
  return absl::ErrnoToStatus(errno, absl::StrFormat("--api-socket %s: connect", path));
}

absl::Status BindAndListen(int fd, const sockaddr* addr, socklen_t len, const std::string& what) {
  if (::bind(fd, addr, len) != 0) return absl::ErrnoToStatus(errno, what + ": bind");
  if (::listen(fd, kBacklog) != 0) return absl::ErrnoToStatus(errno, what + ": listen");
  return absl::OkStatus();
}

}  // namespace

absl::Status ClaimUnixSocketPath(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, absl::StrFormat("--api-socket %s", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--api-socket %s: exists and is not a socket; not replacing it", path));
  }
  PCIVMM_ASSIGN_OR_RETURN(const bool live, SomeoneListens(path));
  if (live) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--api-socket %s: a live server is listening there (another pcivmm?)", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno,
                               absl::StrFormat("--api-socket %s: remove stale socket", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<base::UniqueFd> ListenUnix(const std::string& path) {
  PCIVMM_RETURN_IF_ERROR(ClaimUnixSocketPath(path));
  PCIVMM_ASSIGN_OR_RETURN(const sockaddr_un addr, UnixAddress(path));
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  // bind() creates the file: a umask of 0177 makes it 0600 from the start (no window in
  // which others could connect); chmod is belt and braces.
  const mode_t old_umask = ::umask(0177);
  absl::Status st = BindAndListen(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr),
                                  "--api-socket " + path);
  ::umask(old_umask);
  PCIVMM_RETURN_IF_ERROR(st);
  if (::chmod(path.c_str(), kSocketMode) != 0) {
    return absl::ErrnoToStatus(errno, "chmod 0600 " + path);
  }
  return fd;
}

absl::StatusOr<base::UniqueFd> ListenTcp(const std::string& address, int* port) {
  const size_t colon = address.rfind(':');
  int want = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &want)) {
    return absl::InvalidArgumentError("--api-tcp " + address + ": want HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(want));
    len = sizeof(*v4);
  } else if (host.size() > 2 && host.front() == '[' &&
             ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(want));
    len = sizeof(*v6);
  } else {
    return absl::InvalidArgumentError("--api-tcp " + address + ": not a numeric address");
  }
  base::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(TCP)");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  PCIVMM_RETURN_IF_ERROR(
      BindAndListen(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len, "--api-tcp " + address));
  len = sizeof(ss);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return absl::ErrnoToStatus(errno, "--api-tcp " + address + ": getsockname");
  }
  *port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  return fd;
}

}  // namespace pcivmm::api
