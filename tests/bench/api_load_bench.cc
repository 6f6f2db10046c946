// api-load: the pcivmm daemon under API load. Starts pcivmm with its API on a Unix socket
// and cfg_storm storming PIO config reads of one GPU without end; measures the daemon's RSS
// beyond guest RAM, then runs N clients (each on its own connection) x M GetStats calls and
// reports the latency percentiles; pauses the VM and checks that the counters agree exactly;
// shuts the daemon down through the API.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "pcivmm/v1/vm_service.grpc.pb.h"
#include "tests/bench/bench_util.h"

ABSL_FLAG(std::string, pcivmm, "build/vmm/pcivmm", "the daemon");
ABSL_FLAG(std::string, guest_dir, "build/guest-images", "directory holding cfg_storm.bin");
ABSL_FLAG(int, clients, 16, "concurrent clients, each on its own connection");
ABSL_FLAG(int, calls, 1000, "GetStats calls per client");
ABSL_FLAG(std::string, json, "", "where to write the JSON result");

namespace pcivmm {
namespace {

namespace v1 = ::pcivmm::v1;

struct Daemon {
  pid_t pid = -1;
  std::string dir;
  std::string socket;
};

Daemon Spawn() {
  Daemon d;
  char tmpl[] = "/tmp/pcivmm-api-load.XXXXXX";
  d.dir = ::mkdtemp(tmpl);
  d.socket = d.dir + "/api.sock";
  std::vector<std::string> args = {
      absl::GetFlag(FLAGS_pcivmm),
      "--guest-image=" + absl::GetFlag(FLAGS_guest_dir) + "/cfg_storm.bin",
      "--guest-arg=4294967295",  // PIO reads of 00:01.0 without end
      "--gpus=2",                // two GPU-like devices with 128 GiB BAR1 each
      "--api-socket=" + d.socket,
      "--console=" + d.dir + "/console",
      "--stats=false"};
  d.pid = ::fork();
  if (d.pid == 0) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::freopen((d.dir + "/pcivmm.log").c_str(), "w", stdout);
    std::freopen((d.dir + "/pcivmm.log").c_str(), "a", stderr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return d;
}

std::shared_ptr<grpc::Channel> Connect(const Daemon& d) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  return grpc::CreateCustomChannel("unix:" + d.socket, grpc::InsecureChannelCredentials(), args);
}

v1::GetVmInfoResponse Info(v1::VmService::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  v1::GetVmInfoResponse r;
  (void)stub.GetVmInfo(&ctx, {}, &r);
  return r;
}

// Waits until the guest wrote its boot marker (it storms right after).
bool WaitForGuest(const Daemon& d, v1::VmService::Stub& stub) {
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    if (::access(d.socket.c_str(), F_OK) == 0 && Info(stub).has_boot_ns()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

struct Load {
  std::vector<int64_t> us;  // sorted latencies
  int errors = 0;
  int regressions = 0;  // a client saw a counter go down
  double seconds = 0;
};

Load RunLoad(const Daemon& d) {
  const int clients = absl::GetFlag(FLAGS_clients), calls = absl::GetFlag(FLAGS_calls);
  std::vector<std::vector<int64_t>> lat(static_cast<size_t>(clients));
  std::atomic<int> errors{0}, regressions{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto stub = v1::VmService::NewStub(Connect(d));
      uint64_t last = 0;
      for (int c = 0; c < calls; ++c) {
        grpc::ClientContext ctx;
        v1::GetStatsResponse r;
        const absl::Time t0 = absl::Now();
        const bool ok = stub->GetStats(&ctx, v1::GetStatsRequest(), &r).ok();
        lat[static_cast<size_t>(i)].push_back(absl::ToInt64Microseconds(absl::Now() - t0));
        if (!ok) errors.fetch_add(1);
        if (ok && r.exits().total() < last) regressions.fetch_add(1);
        if (ok) last = r.exits().total();
      }
    });
  }
  for (auto& t : threads) t.join();
  Load load;
  load.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (auto& l : lat) load.us.insert(load.us.end(), l.begin(), l.end());
  std::sort(load.us.begin(), load.us.end());
  load.errors = errors.load();
  load.regressions = regressions.load();
  return load;
}

// Paused, the storm's counters must agree exactly: every PIO config read is a read of
// 00:01.0's register 0 and one exit on 0xCFC; 0xCF8 may be one ahead (the pause can fall
// between a read's address write and its data read).
bool CountersAgree(v1::VmService::Stub& stub, uint64_t* reads) {
  grpc::ClientContext p;
  v1::PauseVmResponse pr;
  if (!stub.PauseVm(&p, {}, &pr).ok()) return false;
  grpc::ClientContext ctx;
  v1::GetStatsRequest req;
  req.set_include_config_registers(true);
  v1::GetStatsResponse s;
  if (!stub.GetStats(&ctx, req, &s).ok()) return false;
  uint64_t reg0 = 0, cf8 = 0, cfc = 0;
  for (const auto& r : s.config().by_register()) reg0 += r.offset() == 0 ? r.reads() : 0;
  for (const auto& port : s.exits().by_port()) {
    cf8 += port.port() == 0xCF8 ? port.writes() : 0;
    cfc += port.port() == 0xCFC ? port.reads() : 0;
  }
  *reads = s.config().by_path(0).reads();
  return *reads > 0 && *reads == reg0 && *reads == cfc && (cf8 == *reads || cf8 == *reads + 1);
}

int Shutdown(const Daemon& d, v1::VmService::Stub& stub) {
  grpc::ClientContext ctx;
  v1::ShutdownVmResponse r;
  (void)stub.ShutdownVm(&ctx, {}, &r);
  int status = 0;
  ::waitpid(d.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Anonymous memory beyond resident guest RAM (guest RAM is anonymous): heap, stacks, counters.
uint64_t AnonBeyondGuest(const v1::HostMemory& m) {
  return m.rss_anon_bytes() > m.guest_ram_resident_bytes()
             ? m.rss_anon_bytes() - m.guest_ram_resident_bytes()
             : 0;
}

int Main() {
  Daemon d = Spawn();
  auto stub = v1::VmService::NewStub(Connect(d));
  if (!WaitForGuest(d, *stub)) {
    std::fprintf(stderr, "api-load: the daemon did not come up (see %s/pcivmm.log)\n",
                 d.dir.c_str());
    ::kill(d.pid, SIGKILL);
    return 1;
  }
  const v1::HostMemory idle = Info(*stub).memory();
  const Load load = RunLoad(d);
  const v1::HostMemory loaded = Info(*stub).memory();
  uint64_t reads = 0;
  const bool agree = CountersAgree(*stub, &reads);
  const int status = Shutdown(d, *stub);
  const size_t n = load.us.size();
  absl::PrintF(
      "api-load: %d clients x %d GetStats in %.2f s (%.0f calls/s) while the guest made %d PIO "
      "config reads\n  GetStats latency p50 %d us, p99 %d us, max %d us; errors %d, "
      "regressions %d, counters %s\n  pcivmm VmRSS %d KiB (anon %d, file %d, shmem %d), guest "
      "RAM resident %d KiB: overhead %d KiB idle, %d KiB after the load (ECAM shadow %d KiB); "
      "daemon exit status %d\n",
      absl::GetFlag(FLAGS_clients), absl::GetFlag(FLAGS_calls), load.seconds,
      static_cast<double>(n) / load.seconds, reads, load.us[n / 2], load.us[n * 99 / 100],
      load.us.back(), load.errors, load.regressions, agree ? "agree" : "DISAGREE",
      loaded.rss_bytes() >> 10, loaded.rss_anon_bytes() >> 10, loaded.rss_file_bytes() >> 10,
      loaded.rss_shmem_bytes() >> 10, loaded.guest_ram_resident_bytes() >> 10,
      idle.overhead_bytes() >> 10, loaded.overhead_bytes() >> 10, loaded.ecam_shadow_bytes() >> 10,
      status);
  bench::EmitJson(
      absl::GetFlag(FLAGS_json),
      absl::StrFormat("{\"clients\": %d, \"calls\": %d, \"seconds\": %.3f, \"p50_us\": %d, "
                      "\"p99_us\": %d, \"max_us\": %d, \"errors\": %d, \"counters_agree\": %s, "
                      "\"overhead_idle_kib\": %d, \"overhead_loaded_kib\": %d, "
                      "\"rss_anon_kib\": %d, \"rss_file_kib\": %d, \"rss_shmem_kib\": %d, "
                      "\"guest_ram_resident_kib\": %d, \"overhead_anon_idle_kib\": %d, "
                      "\"overhead_anon_loaded_kib\": %d, \"overhead_file_loaded_kib\": %d}\n",
                      absl::GetFlag(FLAGS_clients), absl::GetFlag(FLAGS_calls), load.seconds,
                      load.us[n / 2], load.us[n * 99 / 100], load.us.back(), load.errors,
                      agree ? "true" : "false", idle.overhead_bytes() >> 10,
                      loaded.overhead_bytes() >> 10, loaded.rss_anon_bytes() >> 10,
                      loaded.rss_file_bytes() >> 10, loaded.rss_shmem_bytes() >> 10,
                      loaded.guest_ram_resident_bytes() >> 10, AnonBeyondGuest(idle) >> 10,
                      AnonBeyondGuest(loaded) >> 10, loaded.rss_file_bytes() >> 10));
  return load.errors == 0 && load.regressions == 0 && agree && status == 0 ? 0 : 1;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
