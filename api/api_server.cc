#include "api/api_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "api/listeners.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
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

// Server reflection for one server (InitProtoReflectionServerBuilderPlugin would add it to
// every server of the process, the refusal server too).
class ReflectionOption : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
  }
};

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
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-max-connections: %d; want at least 1", options.max_connections));
  }
  std::unique_ptr<ApiServer> s(new ApiServer(options.max_connections));
  std::vector<base::UniqueFd> listeners;
  if (!options.unix_socket.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(listeners.emplace_back(), ListenUnix(options.unix_socket));
    s->unix_socket_ = options.unix_socket;
  }
  if (!options.tcp.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(std::string address,
                            TcpListenAddress(options.tcp, options.tcp_allow_remote));
    PCIVMM_ASSIGN_OR_RETURN(listeners.emplace_back(), ListenTcp(address, &s->tcp_port_));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;  // no listening ports: the gate hands it each connection
  builder.SetOption(std::make_unique<ReflectionOption>());
  builder.SetMaxReceiveMessageSize(options.max_receive_bytes);
  builder.SetMaxSendMessageSize(options.max_send_bytes);
  builder.RegisterService(service);
  s->server_ = builder.BuildAndStart();
  grpc::ServerBuilder refusal_builder;  // no health, no reflection: it refuses everything
  refusal_builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  refusal_builder.RegisterCallbackGenericService(&s->refusal_service_);
  s->refusal_server_ = refusal_builder.BuildAndStart();
  if (!s->server_ || !s->refusal_server_) {
    return absl::UnavailableError(absl::StrFormat("cannot start the API server (unix %s, tcp %s)",
                                                  options.unix_socket,
                                                  options.tcp.empty() ? "off" : options.tcp));
  }
  PCIVMM_ASSIGN_OR_RETURN(s->gate_,
                          ConnectionGate::Start(std::move(listeners), s->server_.get(),
                                                s->refusal_server_.get(), options.max_connections));
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  return s;
}

ApiServer::~ApiServer() { Shutdown(absl::ZeroDuration()); }

void ApiServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || !server_) return;
  shut_down_ = true;
  gate_.reset();  // no new connections
  server_->GetHealthCheckService()->SetServingStatus(false);
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace);
  server_->Shutdown(deadline);
  refusal_server_->Shutdown(deadline);
  server_->Wait();
  refusal_server_->Wait();
  if (!unix_socket_.empty()) ::unlink(unix_socket_.c_str());
}

std::shared_ptr<grpc::Channel> ApiServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

}  // namespace pcivmm::api
