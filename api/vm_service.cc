#include "api/vm_service.h"

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "api/config_convert.h"
#include "api/metrics.h"
#include "api/proto_convert.h"
#include "api/request_validation.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/boot_marker.h"

namespace pcivmm::api {

// absl and gRPC share the canonical status codes (google.rpc.Code).
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::Status VmServiceImpl::GetVmInfo(grpc::ServerContext* /*context*/,
                                      const v1::GetVmInfoRequest* /*request*/,
                                      v1::GetVmInfoResponse* response) {
  *response = backend_.Info();
  response->set_state(ToProto(backend_.state()));
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::PauseVm(grpc::ServerContext* /*context*/,
                                    const v1::PauseVmRequest* /*request*/,
                                    v1::PauseVmResponse* /*response*/) {
  return ToGrpcStatus(backend_.Pause());
}

grpc::Status VmServiceImpl::ResumeVm(grpc::ServerContext* /*context*/,
                                     const v1::ResumeVmRequest* /*request*/,
                                     v1::ResumeVmResponse* /*response*/) {
  return ToGrpcStatus(backend_.Resume());
}

grpc::Status VmServiceImpl::ShutdownVm(grpc::ServerContext* /*context*/,
                                       const v1::ShutdownVmRequest* /*request*/,
                                       v1::ShutdownVmResponse* /*response*/) {
  absl::Status st = backend_.Shutdown();
  if (st.ok() && options_.on_shutdown) options_.on_shutdown();
  return ToGrpcStatus(st);
}

grpc::Status VmServiceImpl::ListDevices(grpc::ServerContext* /*context*/,
                                        const v1::ListDevicesRequest* /*request*/,
                                        v1::ListDevicesResponse* response) {
  *response = backend_.Devices();
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::ReadConfig(grpc::ServerContext* /*context*/,
                                       const v1::ReadConfigRequest* request,
                                       v1::ReadConfigResponse* response) {
  auto args = ValidateConfigAccess(request->bdf(), request->has_bdf(), request->offset(),
                                   request->width(), backend_);
  if (!args.ok()) return ToGrpcStatus(args.status());
  response->set_value(backend_.ReadConfig(args->bdf, args->offset, args->width));
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::WriteConfig(grpc::ServerContext* /*context*/,
                                        const v1::WriteConfigRequest* request,
                                        v1::WriteConfigResponse* response) {
  auto args = ValidateConfigAccess(request->bdf(), request->has_bdf(), request->offset(),
                                   request->width(), backend_);
  if (!args.ok()) return ToGrpcStatus(args.status());
  if (absl::Status st = ValidateValueFits(request->value(), args->width); !st.ok()) {
    return ToGrpcStatus(st);
  }
  absl::Status st = backend_.WriteConfig(args->bdf, args->offset, args->width, request->value());
  if (!st.ok()) return ToGrpcStatus(st);
  response->set_read_back(backend_.ReadConfig(args->bdf, args->offset, args->width));
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::GetStats(grpc::ServerContext* /*context*/,
                                     const v1::GetStatsRequest* request,
                                     v1::GetStatsResponse* response) {
  auto bdf = ValidateStatsBdf(request->bdf(), request->has_bdf(), backend_);
  if (!bdf.ok()) return ToGrpcStatus(bdf.status());
  *response = backend_.Stats({request->include_config_registers(), request->include_kvm(), *bdf});
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::ResetStats(grpc::ServerContext* /*context*/,
                                       const v1::ResetStatsRequest* request,
                                       v1::ResetStatsResponse* /*response*/) {
  auto scopes = StatsScopesMask(request->scopes());
  if (!scopes.ok()) return ToGrpcStatus(scopes.status());
  backend_.ResetStats(*scopes);
  return grpc::Status::OK;
}

grpc::Status VmServiceImpl::GetMappingStats(grpc::ServerContext* /*context*/,
                                            const v1::GetMappingStatsRequest* request,
                                            v1::GetMappingStatsResponse* response) {
  auto bdf = ValidateStatsBdf(request->bdf(), request->has_bdf(), backend_);
  if (!bdf.ok()) return ToGrpcStatus(bdf.status());
  if (*bdf && !backend_.HasFunction(**bdf)) {
    return ToGrpcStatus(
        absl::NotFoundError(absl::StrFormat("bdf: no function at %s", (*bdf)->ToString())));
  }
  *response->mutable_mapping() = backend_.MappingStats(*bdf);
  return grpc::Status::OK;
}

absl::Status VmServiceImpl::DoSetBarPolicy(const v1::SetBarPolicyRequest& request,
                                           v1::SetBarPolicyResponse* response) {
  PCIVMM_ASSIGN_OR_RETURN(std::optional<pci::MapPolicy> policy, RequestedPolicy(request.policy()));
  std::optional<uint64_t> cost;
  if (request.has_cost_ns_per_gib()) {
    if (request.cost_ns_per_gib() > kMaxCostNsPerGib) {
      return absl::InvalidArgumentError(
          absl::StrFormat("cost_ns_per_gib: %d is above %d (1 s per GiB)",
                          request.cost_ns_per_gib(), kMaxCostNsPerGib));
    }
    cost = request.cost_ns_per_gib();
  }
  if (!policy && !cost) {
    return absl::InvalidArgumentError("policy: unspecified and no cost_ns_per_gib: nothing to set");
  }
  PCIVMM_RETURN_IF_ERROR(backend_.SetBarPolicy(policy, cost));
  const v1::MappingStats now = backend_.MappingStats(std::nullopt);
  response->set_policy(now.policy());
  response->set_cost_ns_per_gib(now.cost_ns_per_gib());
  return absl::OkStatus();
}

grpc::Status VmServiceImpl::SetBarPolicy(grpc::ServerContext* /*context*/,
                                         const v1::SetBarPolicyRequest* request,
                                         v1::SetBarPolicyResponse* response) {
  return ToGrpcStatus(DoSetBarPolicy(*request, response));
}

absl::Status VmServiceImpl::DoSetConfigMode(const v1::SetConfigModeRequest& request,
                                            v1::SetConfigModeResponse* response) {
  if (!request.has_pio_enabled() && !request.has_ecam_fast_path()) {
    return absl::InvalidArgumentError(
        "pio_enabled, ecam_fast_path: neither is set: nothing to switch");
  }
  std::optional<bool> pio, fast;
  if (request.has_pio_enabled()) pio = request.pio_enabled();
  if (request.has_ecam_fast_path()) fast = request.ecam_fast_path();
  PCIVMM_RETURN_IF_ERROR(backend_.SetConfigMode(pio, fast));
  *response->mutable_config_mode() = backend_.Info().config_mode();
  return absl::OkStatus();
}

grpc::Status VmServiceImpl::SetConfigMode(grpc::ServerContext* /*context*/,
                                          const v1::SetConfigModeRequest* request,
                                          v1::SetConfigModeResponse* response) {
  return ToGrpcStatus(DoSetConfigMode(*request, response));
}

void VmServiceImpl::AddEvent(const EventRecord& record, v1::WatchEventsResponse* response) {
  v1::Event* e = response->add_events();
  ToProto(record, e);
  if (record.kind == EventKind::kStateChange && record.state == VmState::kStopped) {
    e->mutable_state_change()->set_detail(backend_.Info().stop_detail());
  }
  if (record.kind == EventKind::kBootTimeout) {
    if (auto report = backend_.events().boot_timeout_report(record.report)) {
      ToProto(*report, e->mutable_boot_timeout());
    }
  }
}

absl::Status VmServiceImpl::StreamEvents(grpc::ServerContext* context,
                                         EventHub::Subscription& subscription,
                                         grpc::ServerWriter<v1::WatchEventsResponse>* writer) {
  while (!context->IsCancelled()) {
    EventHub::Subscription::Batch batch =
        subscription.Next(options_.max_events_per_response, options_.event_poll);
    if (batch.closed) return absl::OkStatus();
    if (batch.events.empty() && batch.dropped == 0) continue;
    v1::WatchEventsResponse response;
    response.set_dropped(batch.dropped);
    for (const EventRecord& r : batch.events) AddEvent(r, &response);
    if (!writer->Write(response)) return absl::OkStatus();  // the client went away
  }
  return absl::CancelledError("the client cancelled the stream");
}

bool VmServiceImpl::CloseCancelledWatches() {
  absl::MutexLock lock(&watches_mu_);
  bool any = false;
  for (const Watch& w : watches_) {
    if (!w.context->IsCancelled()) continue;
    w.subscription->Close();
    any = true;
  }
  return any;
}

absl::StatusOr<std::unique_ptr<EventHub::Subscription>> VmServiceImpl::SubscribeReapingCancelled(
    uint32_t kinds, size_t buffer) {
  auto s = backend_.events().Subscribe(kinds, buffer);
  if (s.ok() || s.status().code() != absl::StatusCode::kResourceExhausted ||
      !CloseCancelledWatches()) {
    return s;
  }
  return backend_.events().Subscribe(kinds, buffer);  // a closed subscription left its slot
}

grpc::Status VmServiceImpl::WatchEvents(grpc::ServerContext* context,
                                        const v1::WatchEventsRequest* request,
                                        grpc::ServerWriter<v1::WatchEventsResponse>* writer) {
  auto kinds = EventKindsMask(request->kinds());
  if (!kinds.ok()) return ToGrpcStatus(kinds.status());
  auto buffer = EventBufferSize(request->buffer_events());
  if (!buffer.ok()) return ToGrpcStatus(buffer.status());
  auto subscription = SubscribeReapingCancelled(*kinds, *buffer);
  if (!subscription.ok()) return ToGrpcStatus(subscription.status());
  {
    absl::MutexLock lock(&watches_mu_);
    watches_.push_back({context, subscription->get()});
  }
  absl::Cleanup forget = [this, s = subscription->get()] {
    absl::MutexLock lock(&watches_mu_);
    std::erase_if(watches_, [s](const Watch& w) { return w.subscription == s; });
  };
  // The current state first (sequence 0), so a watcher needs no GetVmInfo race.
  if ((*kinds & EventKindBit(EventKind::kStateChange)) != 0) {
    EventRecord now;
    now.state = backend_.state();
    now.time_ns = devices::MonotonicNowNs() - backend_.events().start_ns();
    v1::WatchEventsResponse first;
    AddEvent(now, &first);
    if (!writer->Write(first)) return grpc::Status::OK;
  }
  return ToGrpcStatus(StreamEvents(context, **subscription, writer));
}

grpc::Status VmServiceImpl::GetMetrics(grpc::ServerContext* /*context*/,
                                       const v1::GetMetricsRequest* request,
                                       v1::GetMetricsResponse* response) {
  const v1::MetricsSample sample = SampleMetrics(backend_);
  switch (request->format()) {
    case v1::METRICS_FORMAT_UNSPECIFIED:
    case v1::METRICS_FORMAT_PROMETHEUS:
      response->set_text(RenderPrometheus(sample));
      return grpc::Status::OK;
    case v1::METRICS_FORMAT_JSON:
      response->set_text(RenderJsonLine(sample));
      return grpc::Status::OK;
    default:
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrFormat("format: %d is not a MetricsFormat", request->format())));
  }
}

}  // namespace pcivmm::api
