// The API's listening sockets, made by pcivmm itself (not by gRPC) so that it accepts each
// connection and can count them (api/connection_gate.h).
#ifndef PCIVMM_API_LISTENERS_H_
#define PCIVMM_API_LISTENERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::api {

// Prepares `path` for a new server: a live server there is FailedPrecondition naming the
// path; a stale socket file is removed; anything that is not a socket is refused.
absl::Status ClaimUnixSocketPath(const std::string& path);

// A listening Unix socket at `path` (claimed first), mode 0600 from its creation on.
absl::StatusOr<base::UniqueFd> ListenUnix(const std::string& path);

// "PORT" and "localhost:PORT" -> "127.0.0.1:PORT"; "HOST:PORT" with a numeric HOST unchanged
// (IPv6 in brackets). One address, so one listener, also for port 0. A HOST outside loopback
// (127.0.0.0/8, [::1]) serves the unauthenticated API to whoever reaches it: refused unless
// `allow_remote`. InvalidArgument naming --api-tcp for anything else.
absl::StatusOr<std::string> TcpListenAddress(const std::string& tcp, bool allow_remote = false);

// A listening TCP socket at `tcp` as TcpListenAddress accepts it; *port is the port bound (the
// kernel's choice for port 0).
absl::StatusOr<base::UniqueFd> ListenTcp(const std::string& tcp, bool allow_remote, int* port);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_LISTENERS_H_
