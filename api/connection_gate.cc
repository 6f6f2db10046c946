#include "api/connection_gate.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "grpcpp/server_posix.h"
#include "vmm/base/log.h"

namespace pcivmm::api {

RefusalService::RefusalService(int max_connections)
    : message_(absl::StrFormat(
          "pcivmm: %d API connections are open, the most --api-max-connections allows; "
          "close one and retry",
          max_connections)) {}

grpc::ServerGenericBidiReactor* RefusalService::CreateReactor(
    grpc::GenericCallbackServerContext* /*ctx*/) {
  class Refuse : public grpc::ServerGenericBidiReactor {
   public:
    explicit Refuse(const std::string& message) {
      Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, message));
    }
    void OnDone() override { delete this; }
  };
  return new Refuse(message_);
}

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Start(
    std::vector<base::UniqueFd> listeners, grpc::Server* server, grpc::Server* refusal,
    int max_connections) {
  base::UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop.valid()) return absl::ErrnoToStatus(errno, "eventfd for the API accept thread");
  std::unique_ptr<ConnectionGate> gate(
      new ConnectionGate(std::move(listeners), std::move(stop), server, refusal, max_connections));
  gate->thread_ = std::thread([g = gate.get()] { g->Loop(); });
  return gate;
}

ConnectionGate::ConnectionGate(std::vector<base::UniqueFd> listeners, base::UniqueFd stop,
                               grpc::Server* server, grpc::Server* refusal, int max_connections)
    : listeners_(std::move(listeners)),
      stop_(std::move(stop)),
      server_(server),
      refusal_(refusal),
      max_connections_(max_connections) {}

ConnectionGate::~ConnectionGate() {
  const uint64_t one = 1;
  if (::write(stop_.get(), &one, sizeof(one)) < 0) base::LogLine("E", "api: cannot stop accepting");
  if (thread_.joinable()) thread_.join();
}

// pollfds: the stop eventfd, then each listener (readable: a connection waits), then each
// watched connection (POLLRDHUP/POLLHUP: its peer or its server closed it).
void ConnectionGate::Loop() {
  ::pthread_setname_np(::pthread_self(), "api-accept");
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign(1, pollfd{stop_.get(), POLLIN, 0});
    for (const base::UniqueFd& l : listeners_) fds.push_back({l.get(), POLLIN, 0});
    for (const Watched& w : watched_) fds.push_back({w.dup.get(), POLLRDHUP, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      base::LogLine("E",
                    absl::StrFormat("api: poll: %s; no longer accepting", std::strerror(errno)));
      return;
    }
    if (fds[0].revents != 0) return;
    // watched_[i] is fds[1 + listeners + i]; from the back, so erasing keeps the rest in place.
    for (size_t i = watched_.size(); i-- > 0;) {
      if (fds[1 + listeners_.size() + i].revents != 0) Forget(i);
    }
    for (size_t i = 1; i <= listeners_.size(); ++i) {
      if ((fds[i].revents & POLLIN) != 0) Accept(fds[i].fd);
    }
  }
}

void ConnectionGate::Forget(size_t index) {
  if (!watched_[index].refused) open_.fetch_sub(1, std::memory_order_relaxed);
  watched_.erase(watched_.begin() + static_cast<std::ptrdiff_t>(index));
}

void ConnectionGate::Accept(int listener) {
  base::UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!conn.valid()) {
    // Out of fds or memory: the connection stays queued and the listener readable, so back
    // off instead of spinning; EAGAIN or a peer already gone need nothing.
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      PCIVMM_LOG_GUEST("api: accept: %s; retrying in 10 ms", std::strerror(errno));
      ::usleep(10'000);
    }
    return;
  }
  const bool within = open() < max_connections_;
  const int refused_open = static_cast<int>(watched_.size()) - open();
  if (!within && refused_open >= kMaxRefused) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("api: connection closed at once: %d open and %d refused", open(),
                     refused_open);
    return;
  }
  base::UniqueFd dup(::fcntl(conn.get(), F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return;  // out of fds: the connection closes
  if (within) {
    open_.fetch_add(1, std::memory_order_relaxed);
  } else {
    refused_.fetch_add(1, std::memory_order_relaxed);
    PCIVMM_LOG_GUEST("api: connection past --api-max-connections=%d refused", max_connections_);
  }
  watched_.push_back({std::move(dup), !within});
  grpc::AddInsecureChannelFromFd(within ? server_ : refusal_, conn.Release());
}

}  // namespace pcivmm::api
