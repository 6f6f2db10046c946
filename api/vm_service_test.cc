// In-process tests of every RPC, good and bad inputs, against a fake VM.
#include "api/vm_service.h"

#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "api/api_server.h"
#include "api/fake_vm_backend.h"
#include "api/metrics.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

using ::pcivmm::api::testing::FakeVmBackend;

class VmServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VmServiceImpl::Options options;
    options.on_shutdown = [this] { shutdown_.Notify(); };
    options.event_poll = absl::Milliseconds(20);
    service_ = std::make_unique<VmServiceImpl>(&backend_, std::move(options));
    auto server = ApiServer::Start(service_.get(), {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = server_->InProcessChannel();
    stub_ = v1::VmService::NewStub(channel_);
  }
  void TearDown() override {
    backend_.events().Close();
    server_->Shutdown(absl::Seconds(5));
  }

  // Runs one unary RPC with a fresh context.
  template <typename Req, typename Resp, typename Fn>
  grpc::Status Call(Fn fn, const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    return ((*stub_).*fn)(&ctx, req, resp);
  }
  static v1::Bdf MakeBdf(uint32_t bus, uint32_t dev, uint32_t fn) {
    v1::Bdf b;
    b.set_bus(bus);
    b.set_device(dev);
    b.set_function(fn);
    return b;
  }
  grpc::Status Read(v1::Bdf bdf, uint32_t offset, uint32_t width, uint32_t* value = nullptr) {
    v1::ReadConfigRequest req;
    *req.mutable_bdf() = bdf;
    req.set_offset(offset);
    req.set_width(width);
    v1::ReadConfigResponse resp;
    grpc::Status st = Call(&v1::VmService::Stub::ReadConfig, req, &resp);
    if (value) *value = resp.value();
    return st;
  }
  grpc::Status Write(v1::Bdf bdf, uint32_t offset, uint32_t width, uint32_t value,
                     uint32_t* read_back = nullptr) {
    v1::WriteConfigRequest req;
    *req.mutable_bdf() = bdf;
    req.set_offset(offset);
    req.set_width(width);
    req.set_value(value);
    v1::WriteConfigResponse resp;
    grpc::Status st = Call(&v1::VmService::Stub::WriteConfig, req, &resp);
    if (read_back) *read_back = resp.read_back();
    return st;
  }

  FakeVmBackend backend_;
  absl::Notification shutdown_;
  std::unique_ptr<VmServiceImpl> service_;
  std::unique_ptr<ApiServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::VmService::Stub> stub_;
};

void ExpectError(const grpc::Status& st, grpc::StatusCode code, const std::string& field) {
  EXPECT_EQ(st.error_code(), code) << st.error_message();
  EXPECT_NE(st.error_message().find(field), std::string::npos)
      << "'" << st.error_message() << "' does not name " << field;
}

TEST_F(VmServiceTest, GetVmInfoReportsTheBackendsStateAndConfig) {
  v1::GetVmInfoResponse info;
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetVmInfo, v1::GetVmInfoRequest(), &info).ok());
  EXPECT_EQ(info.state(), v1::VM_STATE_RUNNING);
  EXPECT_EQ(info.pid(), 42u);
  EXPECT_EQ(info.config().machine().vcpus(), 1u);
  backend_.set_state(VmState::kPaused);
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetVmInfo, v1::GetVmInfoRequest(), &info).ok());
  EXPECT_EQ(info.state(), v1::VM_STATE_PAUSED);
}

TEST_F(VmServiceTest, PauseAndResumeFollowTheStateMachine) {
  v1::PauseVmResponse p;
  v1::ResumeVmResponse r;
  EXPECT_TRUE(Call(&v1::VmService::Stub::PauseVm, v1::PauseVmRequest(), &p).ok());
  ExpectError(Call(&v1::VmService::Stub::PauseVm, v1::PauseVmRequest(), &p),
              grpc::StatusCode::FAILED_PRECONDITION, "state");
  EXPECT_TRUE(Call(&v1::VmService::Stub::ResumeVm, v1::ResumeVmRequest(), &r).ok());
  ExpectError(Call(&v1::VmService::Stub::ResumeVm, v1::ResumeVmRequest(), &r),
              grpc::StatusCode::FAILED_PRECONDITION, "state");
}

TEST_F(VmServiceTest, ShutdownStopsTheVmAndTellsTheDaemon) {
  v1::ShutdownVmResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::ShutdownVm, v1::ShutdownVmRequest(), &resp).ok());
  EXPECT_EQ(backend_.shutdowns(), 1);
  EXPECT_TRUE(shutdown_.HasBeenNotified());
  EXPECT_EQ(backend_.state(), VmState::kStopped);
}

TEST_F(VmServiceTest, ListDevicesReturnsTheFunctions) {
  v1::ListDevicesResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::ListDevices, v1::ListDevicesRequest(), &resp).ok());
  ASSERT_EQ(resp.functions_size(), 2);
  EXPECT_EQ(resp.functions(1).name(), "gpu0");
  EXPECT_EQ(resp.functions(1).bdf().device(), 1u);
}

TEST_F(VmServiceTest, ReadConfigReturnsTheRegisterAtEveryWidth) {
  uint32_t v = 0;
  ASSERT_TRUE(Read(MakeBdf(0, 1, 0), 0, 4, &v).ok());
  EXPECT_EQ(v, 0x20B510DEu);
  ASSERT_TRUE(Read(MakeBdf(0, 1, 0), 2, 2, &v).ok());
  EXPECT_EQ(v, 0x20B5u);
  ASSERT_TRUE(Read(MakeBdf(0, 1, 0), 1, 1, &v).ok());
  EXPECT_EQ(v, 0x10u);
}

TEST_F(VmServiceTest, WriteConfigWritesAndReadsBack) {
  uint32_t back = 0;
  ASSERT_TRUE(Write(MakeBdf(0, 1, 0), 0x10, 4, 0xC0000000, &back).ok());
  EXPECT_EQ(back, 0xC0000000u);
  uint32_t v = 0;
  ASSERT_TRUE(Read(MakeBdf(0, 1, 0), 0x12, 2, &v).ok());
  EXPECT_EQ(v, 0xC000u);
}

TEST_F(VmServiceTest, ConfigAccessRejectsEveryBadField) {
  v1::ReadConfigRequest no_bdf;
  no_bdf.set_width(4);
  v1::ReadConfigResponse resp;
  ExpectError(Call(&v1::VmService::Stub::ReadConfig, no_bdf, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "bdf: required");
  ExpectError(Read(MakeBdf(1, 1, 0), 0, 4), grpc::StatusCode::INVALID_ARGUMENT, "bdf.bus");
  ExpectError(Read(MakeBdf(0, 32, 0), 0, 4), grpc::StatusCode::INVALID_ARGUMENT, "bdf.device");
  ExpectError(Read(MakeBdf(0, 1, 8), 0, 4), grpc::StatusCode::INVALID_ARGUMENT, "bdf.function");
  ExpectError(Read(MakeBdf(0, 5, 0), 0, 4), grpc::StatusCode::NOT_FOUND, "00:05.0");
  ExpectError(Read(MakeBdf(0, 1, 0), 0, 3), grpc::StatusCode::INVALID_ARGUMENT, "width");
  ExpectError(Read(MakeBdf(0, 1, 0), 0, 0), grpc::StatusCode::INVALID_ARGUMENT, "width");
  ExpectError(Read(MakeBdf(0, 1, 0), 4096, 4), grpc::StatusCode::INVALID_ARGUMENT, "offset");
  ExpectError(Read(MakeBdf(0, 1, 0), 2, 4), grpc::StatusCode::INVALID_ARGUMENT, "offset");
  ExpectError(Write(MakeBdf(0, 1, 0), 4, 1, 0x100), grpc::StatusCode::INVALID_ARGUMENT, "value");
  ExpectError(Write(MakeBdf(0, 1, 0), 4, 2, 0x10000), grpc::StatusCode::INVALID_ARGUMENT, "value");
  ExpectError(Write(MakeBdf(0, 9, 0), 4, 2, 1), grpc::StatusCode::NOT_FOUND, "bdf");
}

TEST_F(VmServiceTest, WriteConfigOnAStoppedVmIsAFailedPrecondition) {
  backend_.set_state(VmState::kStopped);
  ExpectError(Write(MakeBdf(0, 1, 0), 4, 2, 2), grpc::StatusCode::FAILED_PRECONDITION, "state");
}

TEST_F(VmServiceTest, GetStatsPassesTheQueryAndValidatesTheBdf) {
  backend_.set_exits(10);
  v1::GetStatsRequest req;
  req.set_include_config_registers(true);
  req.set_include_kvm(true);
  *req.mutable_bdf() = MakeBdf(0, 7, 1);  // absent functions have counters too
  v1::GetStatsResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetStats, req, &resp).ok());
  EXPECT_EQ(resp.exits().total(), 10u);
  ASSERT_TRUE(backend_.last_query());
  EXPECT_TRUE(backend_.last_query()->config_registers);
  EXPECT_TRUE(backend_.last_query()->kvm);
  EXPECT_EQ(backend_.last_query()->bdf, (pci::Bdf{0, 7, 1}));
  *req.mutable_bdf() = MakeBdf(0, 40, 0);
  ExpectError(Call(&v1::VmService::Stub::GetStats, req, &resp), grpc::StatusCode::INVALID_ARGUMENT,
              "bdf.device");
}

TEST_F(VmServiceTest, ResetStatsTranslatesScopes) {
  v1::ResetStatsRequest req;
  v1::ResetStatsResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::ResetStats, req, &resp).ok());
  EXPECT_EQ(backend_.reset_scopes(), uint32_t{kAllScopes});
  req.add_scopes(v1::STATS_SCOPE_EXITS);
  req.add_scopes(v1::STATS_SCOPE_MAPPING);
  ASSERT_TRUE(Call(&v1::VmService::Stub::ResetStats, req, &resp).ok());
  EXPECT_EQ(backend_.reset_scopes(), uint32_t{kScopeExits | kScopeMapping});
  req.add_scopes(v1::STATS_SCOPE_UNSPECIFIED);
  ExpectError(Call(&v1::VmService::Stub::ResetStats, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "scopes[2]");
}

TEST_F(VmServiceTest, GetMappingStatsNeedsAPresentFunction) {
  v1::GetMappingStatsRequest req;
  v1::GetMappingStatsResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetMappingStats, req, &resp).ok());
  EXPECT_EQ(resp.mapping().bars(0).maps(), 3u);
  *req.mutable_bdf() = MakeBdf(0, 3, 0);
  ExpectError(Call(&v1::VmService::Stub::GetMappingStats, req, &resp), grpc::StatusCode::NOT_FOUND,
              "bdf");
  *req.mutable_bdf() = MakeBdf(2, 0, 0);
  ExpectError(Call(&v1::VmService::Stub::GetMappingStats, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "bdf.bus");
}

TEST_F(VmServiceTest, SetBarPolicySwitchesAndValidates) {
  v1::SetBarPolicyRequest req;
  v1::SetBarPolicyResponse resp;
  ExpectError(Call(&v1::VmService::Stub::SetBarPolicy, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "policy");
  req.set_policy(static_cast<v1::BarPolicy>(9));
  ExpectError(Call(&v1::VmService::Stub::SetBarPolicy, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "policy");
  req.set_policy(v1::BAR_POLICY_DEFERRED);
  req.set_cost_ns_per_gib(2'000'000'000);
  ExpectError(Call(&v1::VmService::Stub::SetBarPolicy, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "cost_ns_per_gib");
  req.set_cost_ns_per_gib(14062500);
  ASSERT_TRUE(Call(&v1::VmService::Stub::SetBarPolicy, req, &resp).ok());
  EXPECT_EQ(resp.policy(), v1::BAR_POLICY_DEFERRED);
  EXPECT_EQ(resp.cost_ns_per_gib(), 14062500u);
  backend_.set_state(VmState::kStopped);
  ExpectError(Call(&v1::VmService::Stub::SetBarPolicy, req, &resp),
              grpc::StatusCode::FAILED_PRECONDITION, "state");
}

TEST_F(VmServiceTest, SetConfigModeSwitchesAndValidates) {
  v1::SetConfigModeRequest req;
  v1::SetConfigModeResponse resp;
  ExpectError(Call(&v1::VmService::Stub::SetConfigMode, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "pio_enabled");
  req.set_ecam_fast_path(true);
  req.set_pio_enabled(false);
  ASSERT_TRUE(Call(&v1::VmService::Stub::SetConfigMode, req, &resp).ok());
  EXPECT_TRUE(resp.config_mode().ecam_fast_path());
  EXPECT_FALSE(resp.config_mode().pio_enabled());
  backend_.set_state(VmState::kStopped);
  ExpectError(Call(&v1::VmService::Stub::SetConfigMode, req, &resp),
              grpc::StatusCode::FAILED_PRECONDITION, "state");
}

TEST_F(VmServiceTest, GetMetricsRendersPrometheusAndJson) {
  backend_.set_exits(6);
  v1::GetMetricsRequest req;
  v1::GetMetricsResponse resp;
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetMetrics, req, &resp).ok());
  EXPECT_NE(resp.text().find("pcivmm_config_accesses_total{path=\"pio\",direction=\"read\"} 3"),
            std::string::npos)
      << resp.text();
  req.set_format(v1::METRICS_FORMAT_JSON);
  ASSERT_TRUE(Call(&v1::VmService::Stub::GetMetrics, req, &resp).ok());
  v1::MetricsSample sample;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(resp.text(), &sample).ok());
  EXPECT_EQ(sample.stats().exits().total(), 6u);
  req.set_format(static_cast<v1::MetricsFormat>(7));
  ExpectError(Call(&v1::VmService::Stub::GetMetrics, req, &resp),
              grpc::StatusCode::INVALID_ARGUMENT, "format");
}

TEST_F(VmServiceTest, WatchEventsStartsWithTheStateAndDeliversInOrder) {
  grpc::ClientContext ctx;
  v1::WatchEventsRequest req;
  auto reader = stub_->WatchEvents(&ctx, req);
  v1::WatchEventsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.events_size(), 1);
  EXPECT_EQ(resp.events(0).state_change().state(), v1::VM_STATE_RUNNING);
  backend_.events().PublishBootMarker(1234, 0);
  backend_.events().OnConfigAccess({});  // not subscribed: config accesses need asking
  backend_.events().OnMapEvent(
      {pci::MapEventKind::kMap, pci::Bdf{0, 1, 0}, 1, 0x2000000000, 1ull << 30, 7});
  std::vector<v1::Event> got;
  while (got.size() < 2 && reader->Read(&resp)) {
    for (const v1::Event& e : resp.events()) got.push_back(e);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].boot_marker().boot_ns(), 1234u);
  EXPECT_EQ(got[1].bar_mapping().op(), v1::BAR_MAPPING_OP_MAP);
  EXPECT_EQ(got[1].bar_mapping().gpa(), 0x2000000000u);
  EXPECT_LT(got[0].sequence(), got[1].sequence());
  ctx.TryCancel();
}

TEST_F(VmServiceTest, WatchEventsCarriesTheBootTimeoutReport) {
  grpc::ClientContext ctx;
  v1::WatchEventsRequest req;
  req.add_kinds(v1::EVENT_KIND_BOOT_TIMEOUT);
  req.add_kinds(v1::EVENT_KIND_STATE_CHANGE);
  auto reader = stub_->WatchEvents(&ctx, req);
  v1::WatchEventsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));  // the current state: subscribed
  platform::BootTimeoutReport report{absl::Seconds(3), "stuck here", {}};
  report.vcpus.push_back({0, 0xffffffff81000000, 2 /* KVM_EXIT_IO */, 41});
  report.vcpus.push_back({1, std::nullopt, kvm::VcpuExitStats::kNoExit, 0});
  backend_.events().PublishBootTimeout(report);
  ASSERT_TRUE(reader->Read(&resp));
  ASSERT_EQ(resp.events_size(), 1);
  ASSERT_TRUE(resp.events(0).has_boot_timeout());
  const v1::BootTimeoutEvent& t = resp.events(0).boot_timeout();
  EXPECT_EQ(t.timeout_ns(), 3'000'000'000u);
  EXPECT_EQ(t.last_console_line(), "stuck here");
  ASSERT_EQ(t.vcpus_size(), 2);
  EXPECT_EQ(t.vcpus(0).rip(), 0xffffffff81000000u);
  EXPECT_EQ(t.vcpus(0).last_exit_reason(), "IO");
  EXPECT_EQ(t.vcpus(0).exits(), 41u);
  EXPECT_EQ(t.vcpus(1).vcpu(), 1);
  EXPECT_FALSE(t.vcpus(1).has_rip());
  EXPECT_EQ(t.vcpus(1).last_exit_reason(), "");
  ctx.TryCancel();
}

TEST_F(VmServiceTest, WatchEventsRejectsBadKindsAndBuffers) {
  for (auto [kind, buffer, field] :
       {std::tuple{v1::EVENT_KIND_UNSPECIFIED, 0u, "kinds[0]"},
        std::tuple{v1::EVENT_KIND_BOOT_MARKER, 70000u, "buffer_events"}}) {
    grpc::ClientContext ctx;
    v1::WatchEventsRequest req;
    req.add_kinds(kind);
    req.set_buffer_events(buffer);
    auto reader = stub_->WatchEvents(&ctx, req);
    v1::WatchEventsResponse resp;
    EXPECT_FALSE(reader->Read(&resp));
    ExpectError(reader->Finish(), grpc::StatusCode::INVALID_ARGUMENT, field);
  }
}

// Every subscriber slot taken by a watch that has received its first message.
struct Watches {
  void FillEverySlot(v1::VmService::Stub& stub) {
    for (int i = 0; i < EventHub::kMaxSubscribers; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      readers.push_back(stub.WatchEvents(contexts.back().get(), v1::WatchEventsRequest()));
      v1::WatchEventsResponse first;
      ASSERT_TRUE(readers.back()->Read(&first));  // subscribed
    }
  }
  void CancelAll() {
    for (auto& c : contexts) c->TryCancel();
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchEventsResponse>>> readers;
};

// A client that cancels its watch frees the slot at once, not at its stream's next poll: a
// harness that reconnects straight away is not told RESOURCE_EXHAUSTED.
TEST(VmServiceWatchTest, ACancelledWatchFreesItsSlotAtOnce) {
  FakeVmBackend backend;
  VmServiceImpl::Options options;
  options.event_poll = absl::Hours(1);  // the stream would notice the cancel only after this
  VmServiceImpl service(&backend, std::move(options));
  auto server = ApiServer::Start(&service, {});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::VmService::NewStub((*server)->InProcessChannel());
  Watches watches;
  ASSERT_NO_FATAL_FAILURE(watches.FillEverySlot(*stub));
  watches.contexts[3]->TryCancel();
  const absl::Time start = absl::Now();
  grpc::ClientContext ctx;
  auto reader = stub->WatchEvents(&ctx, v1::WatchEventsRequest());
  v1::WatchEventsResponse first;
  EXPECT_TRUE(reader->Read(&first)) << "the 17th watch was refused";
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ctx.TryCancel();
  watches.CancelAll();
  backend.events().Close();
  (*server)->Shutdown(absl::Seconds(5));
}

TEST_F(VmServiceTest, TooManyWatchersIsResourceExhausted) {
  Watches watches;
  ASSERT_NO_FATAL_FAILURE(watches.FillEverySlot(*stub_));
  grpc::ClientContext ctx;
  auto reader = stub_->WatchEvents(&ctx, v1::WatchEventsRequest());
  v1::WatchEventsResponse resp;
  EXPECT_FALSE(reader->Read(&resp));
  ExpectError(reader->Finish(), grpc::StatusCode::RESOURCE_EXHAUSTED, "subscribers");
  watches.CancelAll();
}

TEST_F(VmServiceTest, ASlowWatcherLosesEventsAndIsToldExactlyHowMany) {
  grpc::ClientContext ctx;
  v1::WatchEventsRequest req;
  req.add_kinds(v1::EVENT_KIND_BOOT_MARKER);
  req.add_kinds(v1::EVENT_KIND_STATE_CHANGE);
  req.set_buffer_events(8);
  auto reader = stub_->WatchEvents(&ctx, req);
  v1::WatchEventsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));  // the current state: subscribed
  // Published far faster than the stream drains an 8-event buffer.
  constexpr uint64_t kPublished = 200000;
  for (uint64_t i = 1; i <= kPublished; ++i) backend_.events().PublishBootMarker(i, 0);
  uint64_t received = 0, dropped = 0, last = 0;
  while (received + dropped < kPublished && reader->Read(&resp)) {
    dropped += resp.dropped();
    for (const v1::Event& e : resp.events()) {
      EXPECT_GT(e.boot_marker().boot_ns(), last);  // what arrives arrives in order
      last = e.boot_marker().boot_ns();
      ++received;
    }
  }
  EXPECT_EQ(received + dropped, kPublished);
  EXPECT_GT(dropped, 0u);
  ctx.TryCancel();
}

TEST_F(VmServiceTest, ShuttingTheFeedDownEndsTheStream) {
  grpc::ClientContext ctx;
  auto reader = stub_->WatchEvents(&ctx, v1::WatchEventsRequest());
  v1::WatchEventsResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  backend_.events().Close();
  while (reader->Read(&resp)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

}  // namespace
}  // namespace pcivmm::api
