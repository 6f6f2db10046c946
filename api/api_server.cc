#include "api/api_server.h"

#include "absl/strings/str_format.h"
#include "api/listeners.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
namespace {

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

absl::Status CheckApiServerOptions(const ApiServerOptions& options) {
  if (options.max_connections < 1 || options.max_connections > kMaxApiConnections) {
    return absl::InvalidArgumentError(absl::StrFormat("--api-max-connections: %d is outside 1..%d",
                                                      options.max_connections, kMaxApiConnections));
  }
  if (options.tcp.empty()) return absl::OkStatus();
  return TcpListenAddress(options.tcp, options.tcp_allow_remote).status();
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(grpc::Service* service,
                                                            const ApiServerOptions& options) {
  PCIVMM_RETURN_IF_ERROR(CheckApiServerOptions(options));
  std::unique_ptr<ApiServer> s(new ApiServer(options.max_connections));
  std::vector<base::UniqueFd> listeners;
  if (!options.unix_socket.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(listeners.emplace_back(), ListenUnix(options.unix_socket));
    s->unix_socket_ = options.unix_socket;
  }
  if (!options.tcp.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(listeners.emplace_back(),
                            ListenTcp(options.tcp, options.tcp_allow_remote, &s->tcp_port_));
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
