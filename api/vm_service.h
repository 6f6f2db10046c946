// The pcivmm.v1.VmService implementation: validates every request, calls the VmBackend,
// converts absl::Status to grpc::Status at the edge.
//
// The synchronous gRPC API on purpose: some calls block for a while (PauseVm waits for the
// vCPUs to park; a policy switch or config write may sleep in the mapper's cost model),
// which must not happen on the callback API's event-engine threads.
#ifndef PCIVMM_API_VM_SERVICE_H_
#define PCIVMM_API_VM_SERVICE_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/vm_backend.h"
#include "grpcpp/grpcpp.h"
#include "pcivmm/v1/vm_service.grpc.pb.h"

namespace pcivmm::api {

grpc::Status ToGrpcStatus(const absl::Status& status);

class VmServiceImpl final : public v1::VmService::Service {
 public:
  struct Options {
    // Called after ShutdownVm stopped the VM (the daemon then ends its server).
    std::function<void()> on_shutdown;
    // How often a quiet WatchEvents stream checks for cancellation.
    absl::Duration event_poll = absl::Milliseconds(200);
    size_t max_events_per_response = 256;
  };

  // `backend` outlives the service.
  VmServiceImpl(VmBackend* backend, Options options)
      : backend_(*backend), options_(std::move(options)) {}

  grpc::Status GetVmInfo(grpc::ServerContext* context, const v1::GetVmInfoRequest* request,
                         v1::GetVmInfoResponse* response) override;
  grpc::Status PauseVm(grpc::ServerContext* context, const v1::PauseVmRequest* request,
                       v1::PauseVmResponse* response) override;
  grpc::Status ResumeVm(grpc::ServerContext* context, const v1::ResumeVmRequest* request,
                        v1::ResumeVmResponse* response) override;
  grpc::Status ShutdownVm(grpc::ServerContext* context, const v1::ShutdownVmRequest* request,
                          v1::ShutdownVmResponse* response) override;
  grpc::Status ListDevices(grpc::ServerContext* context, const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status ReadConfig(grpc::ServerContext* context, const v1::ReadConfigRequest* request,
                          v1::ReadConfigResponse* response) override;
  grpc::Status WriteConfig(grpc::ServerContext* context, const v1::WriteConfigRequest* request,
                           v1::WriteConfigResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;
  grpc::Status ResetStats(grpc::ServerContext* context, const v1::ResetStatsRequest* request,
                          v1::ResetStatsResponse* response) override;
  grpc::Status GetMappingStats(grpc::ServerContext* context,
                               const v1::GetMappingStatsRequest* request,
                               v1::GetMappingStatsResponse* response) override;
  grpc::Status SetBarPolicy(grpc::ServerContext* context, const v1::SetBarPolicyRequest* request,
                            v1::SetBarPolicyResponse* response) override;
  grpc::Status SetConfigMode(grpc::ServerContext* context, const v1::SetConfigModeRequest* request,
                             v1::SetConfigModeResponse* response) override;
  grpc::Status WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                           grpc::ServerWriter<v1::WatchEventsResponse>* writer) override;
  grpc::Status GetMetrics(grpc::ServerContext* context, const v1::GetMetricsRequest* request,
                          v1::GetMetricsResponse* response) override;

 private:
  absl::Status DoSetBarPolicy(const v1::SetBarPolicyRequest& request,
                              v1::SetBarPolicyResponse* response);
  absl::Status DoSetConfigMode(const v1::SetConfigModeRequest& request,
                               v1::SetConfigModeResponse* response);
  absl::Status StreamEvents(grpc::ServerContext* context, EventHub::Subscription& subscription,
                            grpc::ServerWriter<v1::WatchEventsResponse>* writer);
  void AddEvent(const EventRecord& record, v1::WatchEventsResponse* response);
  // Subscribe; when every slot is taken, first close the subscriptions of streams whose clients
  // cancelled (their threads would notice only at their next poll), which frees their slots.
  absl::StatusOr<std::unique_ptr<EventHub::Subscription>> SubscribeReapingCancelled(uint32_t kinds,
                                                                                    size_t buffer);
  bool CloseCancelledWatches();

  VmBackend& backend_;
  const Options options_;
  struct Watch {
    grpc::ServerContext* context;
    EventHub::Subscription* subscription;
  };
  absl::Mutex watches_mu_;
  std::vector<Watch> watches_ ABSL_GUARDED_BY(watches_mu_);
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_VM_SERVICE_H_
