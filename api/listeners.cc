#include "api/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

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

// A numeric TCP address and its socket form.
struct TcpAddress {
  std::string text;  // "HOST:PORT", as it is bound and printed
  sockaddr_storage addr{};
  socklen_t len = 0;
  bool loopback = false;
};

// "a.b.c.d" or "[v6]" with `port`; nullopt for anything else (a name, a bad literal).
std::optional<TcpAddress> NumericAddress(const std::string& host, uint16_t port) {
  TcpAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.len = sizeof(*v4);
    a.loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  } else if (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
             ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.len = sizeof(*v6);
    a.loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
  } else {
    return std::nullopt;
  }
  a.text = absl::StrFormat("%s:%d", host, port);
  return a;
}

absl::StatusOr<TcpAddress> ParseTcp(const std::string& tcp, bool allow_remote) {
  const size_t colon = tcp.rfind(':');
  const std::string port_text = colon == std::string::npos ? tcp : tcp.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-tcp %s: want PORT or HOST:PORT (port 0..65535)", tcp));
  }
  std::string host = colon == std::string::npos ? "127.0.0.1" : tcp.substr(0, colon);
  if (host.empty()) return absl::InvalidArgumentError("--api-tcp " + tcp + ": empty host");
  if (host == "localhost") host = "127.0.0.1";  // one listener, not one per address family
  std::optional<TcpAddress> a = NumericAddress(host, static_cast<uint16_t>(port));
  if (!a) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-tcp %s: give a numeric address (127.0.0.1, [::1]); a host name may resolve to "
        "several, each its own listener",
        tcp));
  }
  if (!a->loopback && !allow_remote) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-tcp %s: not a loopback address. The API has no authentication: anyone who "
        "reaches the port controls the VM. Pass --api-tcp-allow-remote to serve it there anyway",
        tcp));
  }
  return *std::move(a);
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

absl::StatusOr<std::string> TcpListenAddress(const std::string& tcp, bool allow_remote) {
  PCIVMM_ASSIGN_OR_RETURN(const TcpAddress a, ParseTcp(tcp, allow_remote));
  return a.text;
}

absl::StatusOr<base::UniqueFd> ListenTcp(const std::string& tcp, bool allow_remote, int* port) {
  PCIVMM_ASSIGN_OR_RETURN(TcpAddress a, ParseTcp(tcp, allow_remote));
  base::UniqueFd fd(::socket(a.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(TCP)");
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  PCIVMM_RETURN_IF_ERROR(BindAndListen(fd.get(), reinterpret_cast<const sockaddr*>(&a.addr), a.len,
                                       "--api-tcp " + a.text));
  socklen_t len = sizeof(a.addr);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a.addr), &len) != 0) {
    return absl::ErrnoToStatus(errno, "--api-tcp " + a.text + ": getsockname");
  }
  *port = ntohs(a.addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&a.addr)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&a.addr)->sin6_port);
  return fd;
}

}  // namespace pcivmm::api
