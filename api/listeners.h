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

// A listening TCP socket at "HOST:PORT" as TcpListenAddress gives it (numeric HOST, IPv6 in
// brackets); *port is the port bound (the kernel's choice for port 0).
absl::StatusOr<base::UniqueFd> ListenTcp(const std::string& address, int* port);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_LISTENERS_H_
