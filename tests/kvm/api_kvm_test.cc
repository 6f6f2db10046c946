// KVM tier: the control API over its Unix socket against real guests. The guest's own access
// counts must equal the API's deltas exactly; 16 clients hammer GetStats while a guest storms.
#include <linux/kvm.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "api/api_server.h"
#include "api/config_convert.h"
#include "api/vm_host.h"
#include "api/vm_service.h"
#include "gtest/gtest.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "pci/access/pio_cf8.h"
#include "vmm/kvm/kvm_flavour.h"

namespace pcivmm {
namespace {

constexpr uint64_t kPathEcam = 1ull << 32;  // cfg_storm: bit 32 picks ECAM
constexpr uint64_t kForever = 0xFFFFFFFFull;

// A VM behind the API: the daemon's pieces (VmHost, VmServiceImpl, ApiServer) in-process,
// reached over a real Unix socket.
class ApiVm {
 public:
  static std::unique_ptr<ApiVm> Create(const std::string& json, api::VmHost::Options options) {
    auto config = api::ParseVmConfigJson(json);
    EXPECT_TRUE(config.ok()) << config.status();
    auto spec = api::VmSpecFromConfig(*config);
    EXPECT_TRUE(spec.ok()) << spec.status();
    if (!spec.ok()) return nullptr;
    options.echo_console = false;
    auto host = api::VmHost::Create(*spec, options);
    EXPECT_TRUE(host.ok()) << host.status();
    if (!host.ok()) return nullptr;
    std::unique_ptr<ApiVm> vm(new ApiVm(std::move(*host)));
    return vm->Serve() ? std::move(vm) : nullptr;
  }
  ~ApiVm() {
    host_->Shutdown().IgnoreError();
    host_->events().Close();
    server_->Shutdown(absl::Seconds(5));
    host_.reset();
    ::unlink(socket_.c_str());
    ::rmdir(dir_.c_str());
  }

  // A channel with its own connection (a separate client).
  std::shared_ptr<grpc::Channel> NewChannel() const {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel("unix:" + socket_, grpc::InsecureChannelCredentials(), args);
  }
  v1::VmService::Stub& stub() { return *stub_; }
  api::VmHost& host() { return *host_; }
  uint64_t Report(const std::string& key) const {
    for (absl::string_view line : absl::StrSplit(host_->machine().console().output(), '\n')) {
      uint64_t v = 0;
      if (absl::ConsumePrefix(&line, "REPORT " + key + "=") && absl::SimpleAtoi(line, &v)) return v;
    }
    ADD_FAILURE() << "no REPORT " << key << " in:\n" << host_->machine().console().output();
    return ~0ull;
  }

 private:
  explicit ApiVm(std::unique_ptr<api::VmHost> host) : host_(std::move(host)) {}
  bool Serve() {
    char tmpl[] = "/tmp/pcivmm-api-kvm.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/api.sock";
    service_ = std::make_unique<api::VmServiceImpl>(host_.get(), api::VmServiceImpl::Options());
    api::ApiServerOptions o;
    o.unix_socket = socket_;
    auto server = api::ApiServer::Start(service_.get(), o);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return false;
    server_ = std::move(*server);
    stub_ = v1::VmService::NewStub(NewChannel());
    return true;
  }

  std::unique_ptr<api::VmHost> host_;
  std::unique_ptr<api::VmServiceImpl> service_;
  std::unique_ptr<api::ApiServer> server_;
  std::unique_ptr<v1::VmService::Stub> stub_;
  std::string dir_, socket_;
};

// Every call gets a deadline: a hang becomes a failure that says where.
void Deadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
}

std::string GuestJson(const std::string& guest, uint64_t arg, const std::string& pci_extra = "") {
  return absl::StrFormat(
      R"({"testGuest": {"imagePath": "%s/%s.bin", "arg": "%d"},
          "pci": {"devices": [{"name": "gpu0", "slot": 1, "model": "DEVICE_MODEL_GPU_LIKE",
                               "bar1Gib": "4"}] %s}})",
      PCIVMM_GUEST_DIR, guest, arg, pci_extra);
}

// Reads the event feed until `want` returns true (or the stream's deadline passes).
class EventWatch {
 public:
  explicit EventWatch(v1::VmService::Stub& stub) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
    reader_ = stub.WatchEvents(&ctx_, v1::WatchEventsRequest());
    // The stream is subscribed once its first message (the current state) arrives; only
    // then is no later event missed.
    EXPECT_TRUE(WaitFor([](const v1::Event& e) { return e.has_state_change(); }));
  }
  ~EventWatch() { ctx_.TryCancel(); }
  // Consumes events up to and including the first that `want` accepts. One response may
  // carry several events: the rest stay queued for the next call.
  bool WaitFor(const std::function<bool(const v1::Event&)>& want) {
    for (;;) {
      while (!pending_.empty()) {
        v1::Event e = std::move(pending_.front());
        pending_.pop_front();
        seen_.push_back(e);
        if (want(e)) return true;
      }
      v1::WatchEventsResponse r;
      if (!reader_->Read(&r)) break;
      dropped_ += r.dropped();
      for (v1::Event& e : *r.mutable_events()) pending_.push_back(std::move(e));
    }
    std::string log;
    for (const v1::Event& e : seen_) absl::StrAppend(&log, e.ShortDebugString(), "\n");
    ADD_FAILURE() << "the feed ended (dropped " << dropped_ << ") after:\n" << log;
    return false;
  }
  bool WaitForState(v1::VmState s) {
    return WaitFor(
        [s](const v1::Event& e) { return e.has_state_change() && e.state_change().state() == s; });
  }
  const std::vector<v1::Event>& seen() const { return seen_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEventsResponse>> reader_;
  std::deque<v1::Event> pending_;
  std::vector<v1::Event> seen_;
  uint64_t dropped_ = 0;
};

v1::GetStatsResponse Stats(v1::VmService::Stub& stub, bool registers = false) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::GetStatsRequest req;
  req.set_include_config_registers(registers);
  v1::GetStatsResponse r;
  const grpc::Status st = stub.GetStats(&ctx, req, &r);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return r;
}

template <typename Resp, typename Req>
void Must(grpc::Status (v1::VmService::Stub::*fn)(grpc::ClientContext*, const Req&, Resp*),
          v1::VmService::Stub& stub) {
  grpc::ClientContext ctx;
  Deadline(&ctx);
  Resp r;
  const grpc::Status st = (stub.*fn)(&ctx, Req(), &r);
  ASSERT_TRUE(st.ok()) << st.error_message();
}

// Counters of one snapshot, by name.
struct Counts {
  uint64_t total = 0;
  std::map<uint32_t, std::pair<uint64_t, uint64_t>> ports;  // port -> (in, out)
  std::map<std::string, std::pair<uint64_t, uint64_t>> regions;
  std::map<v1::ConfigPath, std::pair<uint64_t, uint64_t>> paths;
  uint64_t reg0_reads = 0;  // 00:01.0 offset 0, any path
};

Counts Parse(const v1::GetStatsResponse& s) {
  Counts c;
  c.total = s.exits().total();
  for (const auto& p : s.exits().by_port()) c.ports[p.port()] = {p.reads(), p.writes()};
  for (const auto& r : s.exits().by_mmio_region()) c.regions[r.name()] = {r.reads(), r.writes()};
  for (const auto& p : s.config().by_path()) c.paths[p.path()] = {p.reads(), p.writes()};
  for (const auto& r : s.config().by_register()) {
    if (r.bdf().device() == 1 && r.offset() == 0) c.reg0_reads += r.reads();
  }
  return c;
}

class ApiKvmTest : public ::testing::Test {
 protected:
  // Boots cfg_storm (n reads) parked right after its boot marker; returns the stats then.
  v1::GetStatsResponse BootToMarker(uint64_t arg, const std::string& pci_extra = "") {
    api::VmHost::Options o;
    o.pause_on_boot_marker = true;
    vm_ = ApiVm::Create(GuestJson("cfg_storm", arg, pci_extra), o);
    EXPECT_TRUE(vm_);
    if (!vm_) return {};
    watch_ = std::make_unique<EventWatch>(vm_->stub());
    vm_->host().Start();
    EXPECT_TRUE(watch_->WaitFor([](const v1::Event& e) { return e.has_boot_marker(); }));
    EXPECT_TRUE(watch_->WaitForState(v1::VM_STATE_PAUSED));
    return Stats(vm_->stub(), true);
  }
  // Resumes and waits for the guest's exit.
  v1::GetStatsResponse RunToExit() {
    Must(&v1::VmService::Stub::ResumeVm, vm_->stub());
    EXPECT_TRUE(watch_->WaitForState(v1::VM_STATE_STOPPED));
    return Stats(vm_->stub(), true);
  }
  // Runs for `d`, then pauses: the counters of the pause are exact.
  v1::GetStatsResponse RunFor(absl::Duration d) {
    Must(&v1::VmService::Stub::ResumeVm, vm_->stub());
    absl::SleepFor(d);
    Must(&v1::VmService::Stub::PauseVm, vm_->stub());
    return Stats(vm_->stub(), true);
  }

  std::unique_ptr<ApiVm> vm_;
  std::unique_ptr<EventWatch> watch_;
};

TEST_F(ApiKvmTest, PioAccessesOfTheGuestAreExactlyTheApiDeltas) {
  constexpr uint64_t kN = 1000;
  Counts before = Parse(BootToMarker(kN));
  EXPECT_EQ(before.ports[PCIVMM_BOOT_MARKER_PORT].second, 1u);
  EXPECT_EQ(before.paths[v1::CONFIG_PATH_PIO].first, 0u);  // the marker precedes every access
  Counts after = Parse(RunToExit());
  const uint64_t accesses = vm_->Report("config_reads");
  EXPECT_EQ(vm_->Report("storm_reads"), kN);
  EXPECT_EQ(accesses, kN + 2);  // + the absent ID and the absent word
  EXPECT_EQ(after.paths[v1::CONFIG_PATH_PIO].first - before.paths[v1::CONFIG_PATH_PIO].first,
            accesses);
  EXPECT_EQ(after.reg0_reads - before.reg0_reads, kN);
  EXPECT_EQ(after.ports[pci::kPioConfigAddressPort].second -
                before.ports[pci::kPioConfigAddressPort].second,
            accesses);
  const uint64_t data_in = after.ports[pci::kPioConfigDataPort].first + after.ports[0xCFE].first -
                           before.ports[pci::kPioConfigDataPort].first;
  EXPECT_EQ(data_in, accesses);
  EXPECT_EQ(vm_->host().Wait().exit_code, 0);
}

TEST_F(ApiKvmTest, EcamTrapAccessesOfTheGuestAreExactlyTheApiDeltas) {
  constexpr uint64_t kN = 700;
  Counts before = Parse(BootToMarker(kPathEcam | kN));
  Counts after = Parse(RunToExit());
  const uint64_t accesses = vm_->Report("config_reads");
  EXPECT_EQ(after.paths[v1::CONFIG_PATH_ECAM].first - before.paths[v1::CONFIG_PATH_ECAM].first,
            accesses);
  EXPECT_EQ(after.regions["pci-ecam"].first - before.regions["pci-ecam"].first, accesses);
  EXPECT_EQ(after.reg0_reads - before.reg0_reads, kN);
  EXPECT_EQ(after.ports[pci::kPioConfigAddressPort].second, 0u);
}

// Pauses make the deltas exact while the guest storms without end; switching the fast path
// on through the API stops the exits (the reads go to the shadow).
TEST_F(ApiKvmTest, TheFastPathSwitchedOnThroughTheApiStopsTheExits) {
  BootToMarker(kPathEcam | kForever);
  Counts a = Parse(Stats(vm_->stub(), true));
  Counts b = Parse(RunFor(absl::Milliseconds(300)));
  const uint64_t trapped =
      b.paths[v1::CONFIG_PATH_ECAM].first - a.paths[v1::CONFIG_PATH_ECAM].first;
  EXPECT_GT(trapped, 0u);
  EXPECT_EQ(b.regions["pci-ecam"].first - a.regions["pci-ecam"].first, trapped);
  EXPECT_EQ(b.reg0_reads - a.reg0_reads, trapped);
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::SetConfigModeRequest req;
    req.set_ecam_fast_path(true);
    v1::SetConfigModeResponse resp;
    ASSERT_TRUE(vm_->stub().SetConfigMode(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.config_mode().ecam_fast_path());
  }
  {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::GetVmInfoResponse info;
    ASSERT_TRUE(vm_->stub().GetVmInfo(&ctx, {}, &info).ok());
    EXPECT_TRUE(info.ecam_fast_path().enabled());
    EXPECT_EQ(info.ecam_fast_path().slots(), 1u);                // no function opts out: one slot
    EXPECT_EQ(info.ecam_fast_path().shadow_bytes(), 12u << 10);  // bridge + gpu + all-ones
  }
  Counts c = Parse(RunFor(absl::Milliseconds(300)));
  EXPECT_EQ(c.regions["pci-ecam"].first, b.regions["pci-ecam"].first);
  EXPECT_EQ(c.paths[v1::CONFIG_PATH_ECAM].first, b.paths[v1::CONFIG_PATH_ECAM].first);
}

TEST_F(ApiKvmTest, PausedCountersStandStillAndShutdownStopsTheVm) {
  BootToMarker(kForever);
  const v1::GetStatsResponse s1 = Stats(vm_->stub());
  absl::SleepFor(absl::Milliseconds(100));
  const v1::GetStatsResponse s2 = Stats(vm_->stub());
  EXPECT_EQ(s1.exits().total(), s2.exits().total());
  EXPECT_EQ(s2.state(), v1::VM_STATE_PAUSED);
  Must(&v1::VmService::Stub::ResumeVm, vm_->stub());
  Must(&v1::VmService::Stub::ShutdownVm, vm_->stub());
  EXPECT_TRUE(watch_->WaitForState(v1::VM_STATE_STOPPED));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::GetVmInfoResponse info;
  ASSERT_TRUE(vm_->stub().GetVmInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.state(), v1::VM_STATE_STOPPED);
  EXPECT_EQ(info.exit_code(), 0);
  EXPECT_EQ(info.stop_detail(), "shut down through the API");
  EXPECT_TRUE(info.has_boot_ns());
  // The KVM it ran on, by the same classifier as this test's: a lab run says so.
  const kvm::KvmClass kvm = kvm::ClassifyHostKvm();
  EXPECT_EQ(info.kvm().flavour(), kvm::FlavourName(kvm.flavour));
  EXPECT_EQ(info.kvm().reason(), kvm.reason);
  EXPECT_EQ(info.kvm().where(), kvm::KvmWhere());
  EXPECT_NE(info.kvm().flavour(), "absent");
  grpc::ClientContext ctx2;
  Deadline(&ctx2);
  v1::PauseVmResponse p;
  EXPECT_EQ(vm_->stub().PauseVm(&ctx2, {}, &p).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// A host-side write goes through the same ConfigSpace and vBAR mapper as the guest's.
TEST_F(ApiKvmTest, AHostWriteToTheCommandRegisterUnmapsTheBarsAndSaysSo) {
  BootToMarker(1);
  auto write = [this](uint32_t cmd) {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::WriteConfigRequest req;
    req.mutable_bdf()->set_device(1);
    req.set_offset(pci::cfg::kCommand);
    req.set_width(2);
    req.set_value(cmd);
    v1::WriteConfigResponse resp;
    EXPECT_TRUE(vm_->stub().WriteConfig(&ctx, req, &resp).ok());
    return resp.read_back();
  };
  EXPECT_EQ(write(0) & pci::cfg::kCommandMemory, 0u);
  EXPECT_TRUE(watch_->WaitFor([](const v1::Event& e) {
    return e.bar_mapping().op() == v1::BAR_MAPPING_OP_UNMAP && e.bar_mapping().bar() == 1;
  }));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::GetMappingStatsResponse m;
  ASSERT_TRUE(vm_->stub().GetMappingStats(&ctx, {}, &m).ok());
  EXPECT_EQ(m.mapping().totals().unmaps(), 3u);
  for (const auto& bar : m.mapping().bars()) EXPECT_FALSE(bar.has_mapped_gpa()) << bar.bar();
  write(pci::cfg::kCommandMemory);
  EXPECT_EQ(vm_->host().pci().mapper().Total().maps, 6u);  // hand-off and now
  Counts c = Parse(Stats(vm_->stub(), true));
  EXPECT_EQ(c.paths[v1::CONFIG_PATH_HOST].second, 2u);
}

TEST_F(ApiKvmTest, KvmBinaryStatsAreServedAndReset) {
  BootToMarker(kForever);
  RunFor(absl::Milliseconds(100));
  auto kvm = [this] {
    grpc::ClientContext ctx;
    Deadline(&ctx);
    v1::GetStatsRequest req;
    req.set_include_kvm(true);
    v1::GetStatsResponse r;
    EXPECT_TRUE(vm_->stub().GetStats(&ctx, req, &r).ok());
    std::map<std::string, uint64_t> v;
    for (const auto& s : r.kvm().vcpus(0).stats()) v[s.name()] = s.value();
    EXPECT_TRUE(r.kvm().available()) << r.kvm().unavailable_reason();
    EXPECT_GT(r.kvm().vm_size(), 0);
    return v;
  };
  auto before = kvm();
  ASSERT_TRUE(before.count("io_exits")) << "no io_exits among KVM's vCPU stats";
  EXPECT_GT(before["io_exits"], 0u);
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::ResetStatsRequest req;
  req.add_scopes(v1::STATS_SCOPE_KVM);
  v1::ResetStatsResponse resp;
  ASSERT_TRUE(vm_->stub().ResetStats(&ctx, req, &resp).ok());
  EXPECT_EQ(kvm()["io_exits"], 0u);  // paused: nothing moved since the reset
}

// 16 clients on their own connections, 1,000 GetStats each, while the guest storms PIO
// config reads: no errors, every client sees its counters grow monotonically, and after a
// pause the totals agree exactly. Prints the latency percentiles (README, "Measured").
TEST_F(ApiKvmTest, SixteenClientsTimesAThousandCallsWhileTheGuestStorms) {
  constexpr int kClients = 16;
  constexpr int kCalls = 1000;
  BootToMarker(kForever);
  Must(&v1::VmService::Stub::ResumeVm, vm_->stub());
  std::vector<std::vector<int64_t>> latencies(kClients);
  std::atomic<int> errors{0}, regressions{0};
  std::vector<std::thread> clients;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto stub = v1::VmService::NewStub(vm_->NewChannel());
      uint64_t last_exits = 0, last_reads = 0;
      for (int call = 0; call < kCalls; ++call) {
        grpc::ClientContext ctx;
        Deadline(&ctx);
        v1::GetStatsResponse r;
        const absl::Time t0 = absl::Now();
        const grpc::Status st = stub->GetStats(&ctx, v1::GetStatsRequest(), &r);
        latencies[static_cast<size_t>(i)].push_back(absl::ToInt64Microseconds(absl::Now() - t0));
        if (!st.ok()) {
          errors.fetch_add(1);
          continue;
        }
        const uint64_t reads = r.config().by_path(0).reads();
        if (r.exits().total() < last_exits || reads < last_reads) regressions.fetch_add(1);
        last_exits = r.exits().total();
        last_reads = reads;
      }
    });
  }
  for (auto& t : clients) t.join();
  const absl::Duration elapsed = absl::Now() - start;
  Must(&v1::VmService::Stub::PauseVm, vm_->stub());
  Counts end = Parse(Stats(vm_->stub(), true));
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(regressions.load(), 0);
  EXPECT_GT(end.paths[v1::CONFIG_PATH_PIO].first, 0u);
  EXPECT_EQ(end.paths[v1::CONFIG_PATH_PIO].first, end.reg0_reads);  // the storm reads only that
  // A pause lands between two exits: possibly between a read's address write (0xCF8) and
  // its data read (0xCFC), so the address port may be one ahead, never more, never behind.
  const uint64_t address_writes = end.ports[pci::kPioConfigAddressPort].second;
  const uint64_t reads = end.paths[v1::CONFIG_PATH_PIO].first;
  EXPECT_TRUE(address_writes == reads || address_writes == reads + 1)
      << address_writes << " writes to 0xCF8, " << reads << " config reads";
  EXPECT_EQ(end.ports[pci::kPioConfigDataPort].first, reads);
  std::vector<int64_t> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kClients * kCalls));
  grpc::ClientContext ctx;
  Deadline(&ctx);
  v1::GetVmInfoResponse info;
  ASSERT_TRUE(vm_->stub().GetVmInfo(&ctx, {}, &info).ok());
  absl::PrintF(
      "API LOAD: %d clients x %d GetStats in %.2f s (%.0f calls/s) while the guest made %d PIO "
      "config reads; GetStats latency p50 %d us, p99 %d us, max %d us\n"
      "API MEMORY: VmRSS %d KiB, guest RAM resident %d KiB, VMM overhead %d KiB (ECAM shadow %d "
      "KiB)\n",
      kClients, kCalls, absl::ToDoubleSeconds(elapsed),
      kClients * kCalls / absl::ToDoubleSeconds(elapsed), end.paths[v1::CONFIG_PATH_PIO].first,
      all[all.size() / 2], all[all.size() * 99 / 100], all.back(), info.memory().rss_bytes() >> 10,
      info.memory().guest_ram_resident_bytes() >> 10, info.memory().overhead_bytes() >> 10,
      info.memory().ecam_shadow_bytes() >> 10);
}

}  // namespace
}  // namespace pcivmm
