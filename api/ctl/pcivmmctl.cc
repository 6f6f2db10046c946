// pcivmmctl: a command line for the pcivmm.v1 control API (see ctl.h and the README).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "api/ctl/ctl.h"
#include "api/flag_names.h"

ABSL_FLAG(std::string, socket, "", "the daemon's Unix socket (default: $PCIVMM_API_SOCKET)");
ABSL_FLAG(std::string, address, "", "the daemon's TCP address HOST:PORT instead of --socket");
ABSL_FLAG(bool, json, false, "print responses as JSON (the proto3 JSON mapping)");
// A string for absl::ParseDuration (a Duration flag does not build under TSan).
ABSL_FLAG(std::string, timeout, "10s", "deadline of each call (not watch), e.g. 500ms, 30s");
ABSL_FLAG(bool, registers, false, "stats: per-register config counters");
ABSL_FLAG(bool, kvm, false, "stats: KVM's own counters");
ABSL_FLAG(std::string, bdf, "", "stats, mapping: only this function (e.g. 00:01.0)");
ABSL_FLAG(int64_t, cost_ns_per_gib, -1, "set-policy: the cost model's ns per GiB");
ABSL_FLAG(std::string, pio, "", "set-config-mode: on or off");
ABSL_FLAG(std::string, ecam_fast_path, "", "set-config-mode: on or off");
ABSL_FLAG(std::string, kinds, "", "watch: bar,config,boot,state,timeout (default all but config)");
ABSL_FLAG(uint32_t, buffer, 0, "watch: events the daemon buffers for us (default 4096)");
ABSL_FLAG(int64_t, count, -1, "watch: stop after this many events");
ABSL_FLAG(std::string, format, "prometheus", "metrics: prometheus or json");

namespace {

pcivmm::ctl::Options OptionsFromFlags() {
  pcivmm::ctl::Options o;
  o.json = absl::GetFlag(FLAGS_json);
  if (!absl::ParseDuration(absl::GetFlag(FLAGS_timeout), &o.timeout)) {
    std::cerr << "pcivmmctl: --timeout: not a duration (e.g. 10s); using 10s\n";
    o.timeout = absl::Seconds(10);
  }
  o.registers = absl::GetFlag(FLAGS_registers);
  o.kvm = absl::GetFlag(FLAGS_kvm);
  o.bdf = absl::GetFlag(FLAGS_bdf);
  if (absl::GetFlag(FLAGS_cost_ns_per_gib) >= 0) {
    o.cost_ns_per_gib = static_cast<uint64_t>(absl::GetFlag(FLAGS_cost_ns_per_gib));
  }
  o.pio = absl::GetFlag(FLAGS_pio);
  o.ecam_fast_path = absl::GetFlag(FLAGS_ecam_fast_path);
  o.kinds = absl::GetFlag(FLAGS_kinds);
  o.buffer = absl::GetFlag(FLAGS_buffer);
  o.count = absl::GetFlag(FLAGS_count);
  o.format = absl::GetFlag(FLAGS_format);
  return o;
}

std::string Target() {
  if (std::string a = absl::GetFlag(FLAGS_address); !a.empty()) return a;
  std::string s = absl::GetFlag(FLAGS_socket);
  if (s.empty()) {
    const char* env = std::getenv("PCIVMM_API_SOCKET");
    s = env != nullptr ? env : "";
  }
  return s.empty() ? "" : "unix:" + s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(pcivmm::ctl::Usage());
  std::vector<std::string> flags = pcivmm::api::NormalizeFlagNames(argc, argv);
  std::vector<char*> argp;
  argp.reserve(flags.size());
  for (std::string& a : flags) argp.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(argp.size()), argp.data());
  const std::string target = Target();
  if (target.empty()) {
    std::cerr << "pcivmmctl: no daemon: give --socket=PATH, --address=HOST:PORT or set "
                 "PCIVMM_API_SOCKET\n";
    return pcivmm::ctl::kUsage;
  }
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto stub = pcivmm::v1::VmService::NewStub(channel);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return pcivmm::ctl::Run(OptionsFromFlags(), args, *stub, std::cout, std::cerr);
}
