#include "api/ctl/ctl.h"

#include <sstream>
#include <thread>

#include "api/api_server.h"
#include "api/fake_vm_backend.h"
#include "api/vm_service.h"
#include "gtest/gtest.h"

namespace pcivmm::ctl {
namespace {

using ::pcivmm::api::testing::FakeVmBackend;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = *api::ApiServer::Start(&service_, {});
    stub_ = v1::VmService::NewStub(server_->InProcessChannel());
  }
  void TearDown() override {
    backend_.events().Close();
    server_->Shutdown(absl::Seconds(5));
  }
  int Ctl(const std::vector<std::string>& args, Options o = {}) {
    out_.str("");
    err_.str("");
    return ::pcivmm::ctl::Run(o, args, *stub_, out_, err_);
  }
  // A producer publishes only once `watch` subscribed: an event before that is not its to see.
  void WaitForWatcher() {
    while (backend_.events().subscribers() == 0) absl::SleepFor(absl::Milliseconds(1));
  }

  FakeVmBackend backend_;
  api::VmServiceImpl service_{&backend_, {}};
  std::unique_ptr<api::ApiServer> server_;
  std::unique_ptr<v1::VmService::Stub> stub_;
  std::ostringstream out_, err_;
};

TEST(CtlParseTest, BdfIsBusDeviceFunctionInHex) {
  auto b = ParseBdf("00:1f.7");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->device(), 31u);
  EXPECT_EQ(b->function(), 7u);
  EXPECT_EQ(ParseBdf("02:01.0")->bus(), 2u);
  EXPECT_EQ(ParseBdf("01.0")->device(), 1u);
  for (const char* bad : {"1:2:3.0", "01", "zz:01.0", "00:01.", ""}) {
    EXPECT_FALSE(ParseBdf(bad).ok()) << bad;
  }
}

TEST(CtlParseTest, NumbersAreDecimalOrHex) {
  EXPECT_EQ(*ParseNumber("16"), 16u);
  EXPECT_EQ(*ParseNumber("0x10"), 16u);
  EXPECT_EQ(*ParseNumber("0XFF"), 255u);
  EXPECT_FALSE(ParseNumber("0x").ok());
  EXPECT_FALSE(ParseNumber("ten").ok());
}

TEST(CtlParseTest, ExitCodesFollowTheStatus) {
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::OK), kOk);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INVALID_ARGUMENT), kUsage);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::UNAVAILABLE), kUnreachable);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::NOT_FOUND), kNotFound);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::FAILED_PRECONDITION), kPrecondition);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::RESOURCE_EXHAUSTED), kExhausted);
  EXPECT_EQ(ExitCodeFor(grpc::StatusCode::INTERNAL), kServerError);
}

TEST_F(CtlTest, InfoPrintsATableOrJson) {
  ASSERT_EQ(Ctl({"info"}), kOk);
  EXPECT_NE(out_.str().find("state        RUNNING"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("pid          42"), std::string::npos);
  Options json;
  json.json = true;
  ASSERT_EQ(Ctl({"info"}, json), kOk);
  EXPECT_NE(out_.str().find("\"state\": \"VM_STATE_RUNNING\""), std::string::npos) << out_.str();
}

TEST_F(CtlTest, ReadAndWritePrintValuesInTheirWidth) {
  ASSERT_EQ(Ctl({"read", "00:01.0", "0"}), kOk);
  EXPECT_EQ(out_.str(), "0x20b510de\n");
  ASSERT_EQ(Ctl({"read", "01.0", "2", "2"}), kOk);
  EXPECT_EQ(out_.str(), "0x20b5\n");
  ASSERT_EQ(Ctl({"write", "00:01.0", "0x10", "4", "0xc0000000"}), kOk);
  EXPECT_EQ(out_.str(), "read back 0xc0000000\n");
}

TEST_F(CtlTest, UsageErrorsExitTwoWithoutCallingTheDaemon) {
  EXPECT_EQ(Ctl({}), kUsage);
  EXPECT_EQ(Ctl({"frobnicate"}), kUsage);
  EXPECT_NE(err_.str().find("unknown command 'frobnicate'"), std::string::npos);
  EXPECT_EQ(Ctl({"read", "00:01.0"}), kUsage);
  EXPECT_EQ(Ctl({"read", "nope", "0"}), kUsage);
  EXPECT_NE(err_.str().find("BDF 'nope'"), std::string::npos);
  EXPECT_EQ(Ctl({"write", "00:01.0", "0", "4", "0x1ffffffff"}), kUsage);
  EXPECT_EQ(Ctl({"reset-stats", "everything"}), kUsage);
  EXPECT_EQ(Ctl({"set-policy", "lazy"}), kUsage);
  Options o;
  o.pio = "maybe";
  EXPECT_EQ(Ctl({"set-config-mode"}, o), kUsage);
}

TEST_F(CtlTest, DaemonErrorsMapToExitCodesAndNameTheField) {
  EXPECT_EQ(Ctl({"read", "00:05.0", "0"}), kNotFound);
  EXPECT_NE(err_.str().find("NOT_FOUND: bdf: no function at 00:05.0"), std::string::npos)
      << err_.str();
  EXPECT_EQ(Ctl({"read", "00:01.0", "0", "3"}), kUsage);
  EXPECT_NE(err_.str().find("INVALID_ARGUMENT: width"), std::string::npos) << err_.str();
  EXPECT_EQ(Ctl({"resume"}), kPrecondition);
  EXPECT_EQ(Ctl({"pause"}), kOk);
  EXPECT_EQ(out_.str(), "paused\n");
}

TEST_F(CtlTest, StatsMappingDevicesAndMetricsPrintTheirTables) {
  backend_.set_exits(4);
  ASSERT_EQ(Ctl({"stats"}), kOk);
  EXPECT_NE(out_.str().find("exits: 4 total"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("pio   read            2"), std::string::npos) << out_.str();
  ASSERT_EQ(Ctl({"mapping"}), kOk);
  EXPECT_NE(out_.str().find("gpu0     BAR1 maps 3"), std::string::npos) << out_.str();
  ASSERT_EQ(Ctl({"devices"}), kOk);
  EXPECT_NE(out_.str().find("10de:"), std::string::npos) << out_.str();
  ASSERT_EQ(Ctl({"metrics"}), kOk);
  EXPECT_NE(out_.str().find("# TYPE pcivmm_exits_total counter"), std::string::npos);
  Options o;
  o.bdf = "00:01.0";
  o.registers = true;
  ASSERT_EQ(Ctl({"stats"}, o), kOk);
  EXPECT_TRUE(backend_.last_query()->config_registers);
  EXPECT_EQ(backend_.last_query()->bdf, (pci::Bdf{0, 1, 0}));
}

TEST_F(CtlTest, SwitchesAndResetsReachTheDaemon) {
  Options o;
  o.cost_ns_per_gib = 14062500;
  ASSERT_EQ(Ctl({"set-policy", "deferred"}, o), kOk);
  EXPECT_EQ(out_.str(), "bar policy deferred, cost model 14062500 ns/GiB\n");
  Options m;
  m.ecam_fast_path = "on";
  ASSERT_EQ(Ctl({"set-config-mode"}, m), kOk);
  EXPECT_EQ(out_.str(), "pio on, ecam fast path on\n");
  ASSERT_EQ(Ctl({"reset-stats", "exits", "kvm"}), kOk);
  EXPECT_EQ(backend_.reset_scopes(), uint32_t{api::kScopeExits | api::kScopeKvm});
  ASSERT_EQ(Ctl({"set-config-mode"}), kUsage);  // the daemon: nothing to switch
}

TEST_F(CtlTest, WatchPrintsEventsUntilTheCount) {
  std::thread producer([this] {
    WaitForWatcher();
    backend_.events().PublishBootMarker(2'500'000, 0);
  });
  Options o;
  o.count = 2;  // the current state, then the marker
  ASSERT_EQ(Ctl({"watch"}, o), kOk);
  producer.join();
  EXPECT_NE(out_.str().find("state RUNNING"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("boot marker after 0.003 s (vcpu 0)"), std::string::npos) << out_.str();
}

TEST_F(CtlTest, WatchPrintsABootTimeoutOnOneLine) {
  std::thread producer([this] {
    WaitForWatcher();
    backend_.events().PublishBootTimeout(
        {absl::Seconds(1), "spinning", {{0, 0x100046, 2 /* KVM_EXIT_IO */, 3}, {1, {}, ~0u, 0}}});
  });
  Options o;
  o.kinds = "timeout,state";
  o.count = 2;
  ASSERT_EQ(Ctl({"watch"}, o), kOk);
  producer.join();
  EXPECT_NE(out_.str().find("boot timeout after 1.000 s: no boot marker; last console line "
                            "\"spinning\"; vcpu 0 rip 0x100046 last exit IO (3 exits); vcpu 1 rip "
                            "unknown last exit none (0 exits)\n"),
            std::string::npos)
      << out_.str();
  Options bad;
  bad.kinds = "bar,nonsense";
  EXPECT_EQ(Ctl({"watch"}, bad), kUsage);
}

TEST(CtlUnreachableTest, NoDaemonIsExitThree) {
  auto stub = v1::VmService::NewStub(
      grpc::CreateChannel("unix:/nonexistent/pcivmm.sock", grpc::InsecureChannelCredentials()));
  Options o;
  o.timeout = absl::Milliseconds(200);
  std::ostringstream out, err;
  EXPECT_EQ(::pcivmm::ctl::Run(o, {"info"}, *stub, out, err), kUnreachable);
}

}  // namespace
}  // namespace pcivmm::ctl
