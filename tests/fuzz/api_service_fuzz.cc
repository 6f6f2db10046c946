// Fuzzes the API's request path: byte 0 picks one of the unary RPCs, byte 1 the state of a
// fresh fake VM (created, running, paused, stopped), the rest is the request as the wire
// carries it. Bytes that do not parse as the request never reach the service (gRPC answers
// them itself); every request that does gets OK or one of the codes the API documents
// (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION) with a message. Never a crash.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "api/fake_vm_backend.h"
#include "api/vm_service.h"
#include "tests/fuzz/fuzz_input.h"

namespace pcivmm::api {
namespace {

using fuzz::Check;

template <typename Req, typename Resp>
using Method = grpc::Status (VmServiceImpl::*)(grpc::ServerContext*, const Req*, Resp*);

// The request parsed from `bytes` (as gRPC would) and handed to `method`; nullopt when it
// does not parse.
template <typename Req, typename Resp>
std::optional<grpc::Status> Call(VmServiceImpl& service, Method<Req, Resp> method,
                                 std::string_view bytes) {
  Req request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  Resp response;
  grpc::ServerContext context;
  return (service.*method)(&context, &request, &response);
}

using Rpc = std::function<std::optional<grpc::Status>(VmServiceImpl&, std::string_view)>;

template <typename Req, typename Resp>
Rpc MakeRpc(Method<Req, Resp> method) {
  return [method](VmServiceImpl& s, std::string_view b) { return Call(s, method, b); };
}

const std::vector<Rpc>& Rpcs() {
  static const auto* rpcs = new std::vector<Rpc>{
      MakeRpc(&VmServiceImpl::GetVmInfo),    MakeRpc(&VmServiceImpl::PauseVm),
      MakeRpc(&VmServiceImpl::ResumeVm),     MakeRpc(&VmServiceImpl::ShutdownVm),
      MakeRpc(&VmServiceImpl::ListDevices),  MakeRpc(&VmServiceImpl::ReadConfig),
      MakeRpc(&VmServiceImpl::WriteConfig),  MakeRpc(&VmServiceImpl::GetStats),
      MakeRpc(&VmServiceImpl::ResetStats),   MakeRpc(&VmServiceImpl::GetMappingStats),
      MakeRpc(&VmServiceImpl::SetBarPolicy), MakeRpc(&VmServiceImpl::SetConfigMode),
      MakeRpc(&VmServiceImpl::GetMetrics)};
  return *rpcs;
}

bool Documented(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return true;
    default:
      return false;
  }
}

}  // namespace
}  // namespace pcivmm::api

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm::api;  // NOLINT(google-build-using-namespace): a fuzz entry point
  pcivmm::fuzz::FuzzInput in(data, size);
  const Rpc& rpc = Rpcs()[in.U8() % Rpcs().size()];
  testing::FakeVmBackend backend;
  backend.set_state(static_cast<VmState>(in.U8() % 4));
  VmServiceImpl service(&backend, {});
  const size_t header = std::min<size_t>(size, 2);
  const std::optional<grpc::Status> st =
      rpc(service, {reinterpret_cast<const char*>(data) + header, size - header});
  backend.events().Close();
  if (!st) return 0;
  Check(Documented(st->error_code()), "only the documented status codes");
  Check(st->ok() || !st->error_message().empty(), "an error says why");
  return 0;
}
