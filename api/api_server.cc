#include "api/api_server.h"

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
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "vmm/base/status_macros.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::api {
namespace {

constexpr mode_t kSocketMode = 0600;

// Is a server accepting on `path`? connect() answers: ECONNREFUSED means a stale file.
absl::StatusOr<bool> SomeoneListens(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket %s: longer than %d bytes", path, sizeof(addr.sun_path) - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  // sockaddr_un is the sockaddr for AF_UNIX; connect reads only sizeof(addr) bytes.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    return true;
  }
  if (errno == ECONNREFUSED || errno == ENOENT) return false;
  return absl::ErrnoToStatus(errno, absl::StrFormat("--api-socket %s: connect", path));
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

namespace {

// A numeric host: "a.b.c.d" or "[v6]". Sets *loopback.
bool NumericHost(const std::string& host, bool* loopback) {
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    *loopback = (ntohl(v4.s_addr) >> 24) == 127;
    return true;
  }
  in6_addr v6{};
  if (host.size() > 2 && host.front() == '[' && host.back() == ']' &&
      ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &v6) == 1) {
    *loopback = IN6_IS_ADDR_LOOPBACK(&v6);
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::string> TcpListenAddress(const std::string& tcp, bool allow_remote) {
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
  bool loopback = false;
  if (!NumericHost(host, &loopback)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-tcp %s: give a numeric address (127.0.0.1, [::1]); a host name may resolve to "
        "several, each its own listener",
        tcp));
  }
  if (!loopback && !allow_remote) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-tcp %s: not a loopback address. The API has no authentication: anyone who "
        "reaches the port controls the VM. Pass --api-tcp-allow-remote to serve it there anyway",
        tcp));
  }
  return absl::StrFormat("%s:%d", host, port);
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(grpc::Service* service,
                                                            const ApiServerOptions& options) {
  std::unique_ptr<ApiServer> s(new ApiServer());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(options.max_receive_bytes);
  builder.SetMaxSendMessageSize(options.max_send_bytes);
  // No SO_REUSEPORT clones of the listener: with them gRPC opens one listener per CPU, and
  // for port 0 the clones get ports of their own that nobody is told about.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(service);
  if (!options.unix_socket.empty()) {
    PCIVMM_RETURN_IF_ERROR(ClaimUnixSocketPath(options.unix_socket));
    builder.AddListeningPort("unix:" + options.unix_socket, grpc::InsecureServerCredentials());
    s->unix_socket_ = options.unix_socket;
  }
  if (!options.tcp.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(std::string address,
                            TcpListenAddress(options.tcp, options.tcp_allow_remote));
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &s->tcp_port_);
  }
  // The socket file is created by bind() inside BuildAndStart: a umask of 0177 makes it 0600
  // from the start (no window in which others could connect); chmod below is belt and braces.
  const mode_t old_umask = ::umask(0177);
  s->server_ = builder.BuildAndStart();
  ::umask(old_umask);
  if (!s->server_) {
    return absl::UnavailableError(absl::StrFormat("cannot start the API server (unix %s, tcp %s)",
                                                  options.unix_socket,
                                                  options.tcp.empty() ? "off" : options.tcp));
  }
  if (!s->unix_socket_.empty() && ::chmod(s->unix_socket_.c_str(), kSocketMode) != 0) {
    return absl::ErrnoToStatus(errno, "chmod 0600 " + s->unix_socket_);
  }
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  return s;
}

ApiServer::~ApiServer() { Shutdown(absl::ZeroDuration()); }

void ApiServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
  server_->Wait();
  if (!unix_socket_.empty()) ::unlink(unix_socket_.c_str());
}

std::shared_ptr<grpc::Channel> ApiServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

}  // namespace pcivmm::api
