#include "api/api_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "api/fake_vm_backend.h"
#include "api/vm_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "vmm/base/temp_dir.h"

namespace pcivmm::api {
namespace {

using ::pcivmm::api::testing::FakeVmBackend;

bool Ok(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::VmService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::GetVmInfoResponse info;
  return stub->GetVmInfo(&ctx, v1::GetVmInfoRequest(), &info).ok() && info.pid() == 42;
}

void Wait(grpc::CompletionQueue& cq, intptr_t want) {
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
}

std::string Bytes(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  (void)b.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

// One unary call with raw bytes: for services we have no generated stubs for.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& request, std::string* response) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(&ctx, method, Buffer(request), &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status st;
  call->Finish(&resp, &st, reinterpret_cast<void*>(1));
  Wait(cq, 1);
  *response = Bytes(resp);
  return st;
}

ApiServerOptions UnixOptions(const std::string& path) {
  ApiServerOptions o;
  o.unix_socket = path;
  return o;
}

ApiServerOptions TcpOptions(const std::string& tcp) {
  ApiServerOptions o;
  o.tcp = tcp;
  return o;
}

ApiServerOptions SmallRequests(int bytes) {
  ApiServerOptions o;
  o.max_receive_bytes = bytes;
  return o;
}

class ApiServerTest : public ::testing::Test {
 protected:
  ApiServerTest() : service_(&backend_, {}), socket_(temp_.path() + "/api.sock") {}
  ~ApiServerTest() override { backend_.events().Close(); }

  FakeVmBackend backend_;
  VmServiceImpl service_;
  base::TempDir temp_{"pcivmm-api-test"};
  std::string socket_;
};

int OpenFds() {
  return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                        std::filesystem::directory_iterator())) -
         1;  // the iterator's own
}

// Soak: 2,000 clients, each on its own connection, one call each; the server keeps no fd of
// theirs once they are gone.
TEST_F(ApiServerTest, TwoThousandConnectionsLeaveNoFdBehind) {
  auto server = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_TRUE(server.ok()) << server.status();
  auto connect = [this](int i) {
    grpc::ChannelArguments args;
    args.SetInt("pcivmm.soak.client", i);  // distinct arguments: a connection of its own
    return Ok(
        grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args));
  };
  // Warm up (gRPC's first connection creates its pollers for good), then let the warm-up
  // connections close: the baseline is the count that holds still.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(connect(-1 - i));
  int baseline = OpenFds();
  for (int i = 0; i < 100; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    if (const int now = OpenFds(); now == baseline && i >= 5) break;
    baseline = OpenFds();
  }
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(connect(i)) << "client " << i;
  // The server notices closed connections asynchronously.
  for (int i = 0; i < 500 && OpenFds() > baseline; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(OpenFds(), baseline);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(ApiServerTest, TheUnixSocketIsCreated0600AndServes) {
  auto server = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(Ok(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials())));
  (*server)->Shutdown(absl::Seconds(1));
  EXPECT_NE(::access(socket_.c_str(), F_OK), 0);  // removed on shutdown
}

TEST_F(ApiServerTest, ASecondServerOnALiveSocketIsRefusedNamingThePath) {
  auto first = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_TRUE(first.ok());
  auto second = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(socket_), absl::string_view::npos);
  EXPECT_NE(second.status().message().find("live server"), absl::string_view::npos);
  EXPECT_TRUE(Ok(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials())));
}

TEST_F(ApiServerTest, AStaleSocketFileIsReplaced) {
  {
    base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket_.c_str());
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }  // closed without listening: a stale file, like a crashed daemon's
  auto server = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(Ok(grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials())));
}

TEST_F(ApiServerTest, AFileThatIsNotASocketIsLeftAlone) {
  std::ofstream(socket_) << "precious";
  auto server = ApiServer::Start(&service_, UnixOptions(socket_));
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.status().message().find("not a socket"), absl::string_view::npos);
  std::string content;
  std::ifstream(socket_) >> content;
  EXPECT_EQ(content, "precious");
}

std::shared_ptr<grpc::Channel> OwnConnection(const std::string& socket, int i) {
  grpc::ChannelArguments args;
  args.SetInt("pcivmm.test.client", i);  // distinct arguments: a connection of its own
  return grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
}

grpc::Status VmInfo(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::GetVmInfoResponse info;
  return v1::VmService::NewStub(channel)->GetVmInfo(&ctx, v1::GetVmInfoRequest(), &info);
}

// Within the cap, calls are served; past it, every call of every service fails with
// RESOURCE_EXHAUSTED naming the flag; once a client goes, its place is free again; past the
// refusals too, connections are closed at once.
TEST_F(ApiServerTest, ConnectionsPastTheCapAreRefusedNamingTheFlag) {
  ApiServerOptions o = UnixOptions(socket_);
  o.max_connections = 2;
  auto server = ApiServer::Start(&service_, o);
  ASSERT_TRUE(server.ok()) << server.status();
  const ConnectionGate& gate = (*server)->gate();
  auto first = OwnConnection(socket_, 1);
  auto second = OwnConnection(socket_, 2);
  auto third = OwnConnection(socket_, 3);
  ASSERT_TRUE(Ok(first));
  ASSERT_TRUE(Ok(second));
  const grpc::Status refused = VmInfo(third);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error_message().find("2 API connections are open"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("--api-max-connections"), std::string::npos);
  std::string response;
  EXPECT_EQ(RawUnary(third, "/grpc.health.v1.Health/Check", "", &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(gate.open(), 2);
  EXPECT_EQ(gate.refused(), 1u);

  first.reset();  // its connection closes; the gate sees the hang-up
  for (int i = 0; i < 500 && gate.open() > 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_EQ(gate.open(), 1);
  EXPECT_TRUE(Ok(OwnConnection(socket_, 4)));

  std::vector<std::shared_ptr<grpc::Channel>> more;
  for (int i = 0; i < ConnectionGate::kMaxRefused; ++i) {
    more.push_back(OwnConnection(socket_, 100 + i));
    (void)VmInfo(more.back());
  }
  EXPECT_EQ(VmInfo(OwnConnection(socket_, 99)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_GE(gate.dropped(), 1u);
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(ApiServerTest, TcpListensOnLoopbackUnlessAHostIsGiven) {
  EXPECT_EQ(*TcpListenAddress("0"), "127.0.0.1:0");
  EXPECT_EQ(*TcpListenAddress("8080"), "127.0.0.1:8080");
  EXPECT_EQ(*TcpListenAddress("localhost:0"), "127.0.0.1:0");  // one listener
  EXPECT_EQ(*TcpListenAddress("127.0.0.2:9"), "127.0.0.2:9");
  EXPECT_EQ(*TcpListenAddress("[::1]:9"), "[::1]:9");
  // Beyond loopback only when asked, the error naming the risk and the flag.
  const auto remote = TcpListenAddress("0.0.0.0:9");
  EXPECT_EQ(remote.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(remote.status().message().find("anyone who reaches the port controls the VM"),
            std::string::npos);
  EXPECT_NE(remote.status().message().find("--api-tcp-allow-remote"), std::string::npos);
  EXPECT_FALSE(TcpListenAddress("[::]:9").ok());
  EXPECT_EQ(*TcpListenAddress("0.0.0.0:9", /*allow_remote=*/true), "0.0.0.0:9");
  EXPECT_FALSE(TcpListenAddress("example.org:9", true).ok());  // a name: maybe several binds
  EXPECT_FALSE(TcpListenAddress("x").ok());
  EXPECT_FALSE(TcpListenAddress("70000").ok());
  EXPECT_FALSE(TcpListenAddress(":80").ok());
  auto server = ApiServer::Start(&service_, TcpOptions("0"));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->tcp_port(), 0);
  EXPECT_TRUE(Ok(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->tcp_port()),
                                     grpc::InsecureChannelCredentials())));
}

// grpc.health.v1.Health/Check with an empty HealthCheckRequest (service "") answers
// HealthCheckResponse{status: SERVING (1)}: field 1, varint, value 1.
TEST_F(ApiServerTest, TheStandardHealthServiceSaysServing) {
  auto server = ApiServer::Start(&service_, {});
  ASSERT_TRUE(server.ok());
  std::string resp;
  ASSERT_TRUE(
      RawUnary((*server)->InProcessChannel(), "/grpc.health.v1.Health/Check", "", &resp).ok());
  EXPECT_EQ(resp, std::string("\x08\x01", 2));
}

// grpc.reflection.v1alpha.ServerReflection: ServerReflectionRequest{list_services: ""} is
// field 7, length-delimited, empty; the answer lists the service names.
TEST_F(ApiServerTest, ServerReflectionListsTheService) {
  auto server = ApiServer::Start(&service_, {});
  ASSERT_TRUE(server.ok());
  grpc::GenericStub stub((*server)->InProcessChannel());
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  Wait(cq, 1);
  call->Write(Buffer(std::string("\x3a\x00", 2)), reinterpret_cast<void*>(2));
  Wait(cq, 2);
  grpc::ByteBuffer resp;
  call->Read(&resp, reinterpret_cast<void*>(3));
  Wait(cq, 3);
  call->WritesDone(reinterpret_cast<void*>(4));
  Wait(cq, 4);
  grpc::Status st;
  call->Finish(&st, reinterpret_cast<void*>(5));
  Wait(cq, 5);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(Bytes(resp).find("pcivmm.v1.VmService"), std::string::npos);
}

TEST_F(ApiServerTest, OversizedRequestsAreRefused) {
  auto server = ApiServer::Start(&service_, SmallRequests(1024));
  ASSERT_TRUE(server.ok());
  std::string resp;
  grpc::Status st = RawUnary((*server)->InProcessChannel(), "/pcivmm.v1.VmService/GetVmInfo",
                             std::string(4096, '\0'), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
}

}  // namespace
}  // namespace pcivmm::api
