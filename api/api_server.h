// The gRPC server of the daemon: a Unix socket (mode 0600) and, when asked, TCP (loopback
// unless an address says otherwise); server reflection and the standard health service on;
// bounded message sizes; at most max_connections connections open (api/connection_gate.h).
#ifndef PCIVMM_API_API_SERVER_H_
#define PCIVMM_API_API_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/connection_gate.h"
#include "api/listeners.h"
#include "grpcpp/grpcpp.h"

namespace pcivmm::api {

struct ApiServerOptions {
  std::string unix_socket;           // empty: none
  std::string tcp;                   // "PORT" (loopback) or "HOST:PORT"; empty: none
  bool tcp_allow_remote = false;     // a non-loopback HOST is refused unless set
  int max_receive_bytes = 64 << 10;  // requests are small
  int max_send_bytes = 16 << 20;     // a full GetStats of a busy VM fits easily
  int max_connections = 32;          // open at once, Unix and TCP together
};

inline constexpr int kMaxApiConnections = 4096;

// What Start() would refuse in `options` without touching the system (a bad TCP address,
// the connection cap outside 1..kMaxApiConnections): InvalidArgument naming the flag.
absl::Status CheckApiServerOptions(const ApiServerOptions& options);

class ApiServer {
 public:
  // `service` outlives the server.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(grpc::Service* service,
                                                          const ApiServerOptions& options);
  ~ApiServer();

  // Stops accepting, lets calls finish until `deadline`, then cancels the rest.
  void Shutdown(absl::Duration grace);
  // The TCP port actually bound (when `tcp` asked for port 0), or 0.
  int tcp_port() const { return tcp_port_; }
  const std::string& unix_socket() const { return unix_socket_; }
  // An in-process channel (tests).
  std::shared_ptr<grpc::Channel> InProcessChannel();
  const ConnectionGate& gate() const { return *gate_; }

 private:
  explicit ApiServer(int max_connections) : refusal_service_(max_connections) {}
  RefusalService refusal_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> refusal_server_;
  std::unique_ptr<ConnectionGate> gate_;  // destroyed first: stops handing out connections
  std::string unix_socket_;
  int tcp_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_API_SERVER_H_
