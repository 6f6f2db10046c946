// Accepts the API's connections itself and caps how many are open at once. A connection
// within the cap goes to the API server; past it, to a refusal server that answers every
// call RESOURCE_EXHAUSTED with a message naming the cap (a client sees why, whatever it
// calls); past that too (another kMaxRefused), it is closed at once. A connection counts
// until its peer closes it or the server shuts it down.
#ifndef PCIVMM_API_CONNECTION_GATE_H_
#define PCIVMM_API_CONNECTION_GATE_H_

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::api {

class ConnectionGate {
 public:
  static constexpr int kMaxRefused = 16;

  // Serves the `listeners` (listening, non-blocking) on a thread of its own ("api-accept").
  // `server` and `refusal` outlive the gate.
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> Start(
      std::vector<base::UniqueFd> listeners, grpc::Server* server, grpc::Server* refusal,
      int max_connections);
  ~ConnectionGate();  // stops accepting; open connections stay with their server

  int open() const { return open_.load(std::memory_order_relaxed); }
  uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Watched {
    base::UniqueFd dup;  // a second fd of the connection: its hang-up says the peer is gone
    bool refused;
  };
  ConnectionGate(std::vector<base::UniqueFd> listeners, base::UniqueFd stop, grpc::Server* server,
                 grpc::Server* refusal, int max_connections);
  void Loop();
  void Accept(int listener);
  void Forget(size_t index);  // watched_[index] hung up

  std::vector<base::UniqueFd> listeners_;
  base::UniqueFd stop_;  // eventfd
  grpc::Server* const server_;
  grpc::Server* const refusal_;
  const int max_connections_;
  std::vector<Watched> watched_;  // the accept thread's own; those not refused count in open_
  std::atomic<int> open_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

// The refusal server's only service: every method of every service, RESOURCE_EXHAUSTED.
class RefusalService : public grpc::CallbackGenericService {
 public:
  explicit RefusalService(int max_connections);
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  const std::string message_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_CONNECTION_GATE_H_
