#include "api/ctl/ctl.h"

#include <functional>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "api/ctl/ctl_format.h"
#include "google/protobuf/util/json_util.h"

namespace pcivmm::ctl {
namespace {

// What every command handler needs.
class Context {
 public:
  Context(const Options& o, v1::VmService::StubInterface& s, std::ostream& o_out,
          std::ostream& o_err)
      : options(o), stub(s), out(o_out), err(o_err) {}

  std::unique_ptr<grpc::ClientContext> Call() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
    return ctx;
  }
  // Prints the message as JSON with --json, else the human text.
  int Print(const google::protobuf::Message& m, const std::string& human) const {
    if (!options.json) {
      out << human;
      return kOk;
    }
    google::protobuf::util::JsonPrintOptions p;
    p.add_whitespace = true;
    p.preserve_proto_field_names = true;
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(m, &json, p);
    out << json;
    return kOk;
  }
  int Done(const grpc::Status& st, const google::protobuf::Message& m,
           const std::function<std::string()>& human) const {
    if (!st.ok()) return Fail(st);
    return Print(m, human());
  }
  int Fail(const grpc::Status& st) const {
    err << "pcivmmctl: " << CodeName(st.error_code()) << ": " << st.error_message() << "\n";
    return ExitCodeFor(st.error_code());
  }
  int UsageError(const std::string& message) const {
    err << "pcivmmctl: " << message << "\n";
    return kUsage;
  }
  static std::string CodeName(grpc::StatusCode code) {
    return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  }

  const Options& options;
  v1::VmService::StubInterface& stub;
  std::ostream& out;
  std::ostream& err;
};

using Operands = std::vector<std::string>;
using Handler = std::function<int(const Context&, const Operands&)>;

int Info(const Context& c, const Operands& /*ops*/) {
  v1::GetVmInfoResponse r;
  return c.Done(c.stub.GetVmInfo(c.Call().get(), {}, &r), r, [&] { return FormatInfo(r); });
}

int Pause(const Context& c, const Operands& /*ops*/) {
  v1::PauseVmResponse r;
  return c.Done(c.stub.PauseVm(c.Call().get(), {}, &r), r, [] { return "paused\n"; });
}

int Resume(const Context& c, const Operands& /*ops*/) {
  v1::ResumeVmResponse r;
  return c.Done(c.stub.ResumeVm(c.Call().get(), {}, &r), r, [] { return "running\n"; });
}

int Shutdown(const Context& c, const Operands& /*ops*/) {
  v1::ShutdownVmResponse r;
  return c.Done(c.stub.ShutdownVm(c.Call().get(), {}, &r), r, [] { return "shut down\n"; });
}

int Devices(const Context& c, const Operands& /*ops*/) {
  v1::ListDevicesResponse r;
  return c.Done(c.stub.ListDevices(c.Call().get(), {}, &r), r, [&] { return FormatDevices(r); });
}

// Parses BDF OFFSET [WIDTH [VALUE]] into the request fields.
template <typename Request>
absl::Status ParseAccess(const Operands& ops, size_t width_at, Request* req) {
  auto bdf = ParseBdf(ops[0]);
  if (!bdf.ok()) return bdf.status();
  auto offset = ParseNumber(ops[1]);
  if (!offset.ok())
    return absl::InvalidArgumentError("OFFSET: " + std::string(offset.status().message()));
  uint64_t width = 4;
  if (ops.size() > width_at) {
    auto w = ParseNumber(ops[width_at]);
    if (!w.ok()) return absl::InvalidArgumentError("WIDTH: " + std::string(w.status().message()));
    width = *w;
  }
  if (*offset > UINT32_MAX || width > UINT32_MAX)
    return absl::InvalidArgumentError("OFFSET/WIDTH: too large");
  *req->mutable_bdf() = *bdf;
  req->set_offset(static_cast<uint32_t>(*offset));
  req->set_width(static_cast<uint32_t>(width));
  return absl::OkStatus();
}

int Read(const Context& c, const Operands& ops) {
  if (ops.size() < 2 || ops.size() > 3) return c.UsageError("usage: read BDF OFFSET [WIDTH]");
  v1::ReadConfigRequest req;
  if (absl::Status st = ParseAccess(ops, 2, &req); !st.ok())
    return c.UsageError(std::string(st.message()));
  v1::ReadConfigResponse r;
  return c.Done(c.stub.ReadConfig(c.Call().get(), req, &r), r,
                [&] { return absl::StrFormat("%#0*x\n", 2 + 2 * req.width(), r.value()); });
}

int Write(const Context& c, const Operands& ops) {
  if (ops.size() != 4) return c.UsageError("usage: write BDF OFFSET WIDTH VALUE");
  v1::WriteConfigRequest req;
  if (absl::Status st = ParseAccess(ops, 2, &req); !st.ok())
    return c.UsageError(std::string(st.message()));
  auto value = ParseNumber(ops[3]);
  if (!value.ok() || *value > UINT32_MAX) return c.UsageError("VALUE: want a 32-bit number");
  req.set_value(static_cast<uint32_t>(*value));
  v1::WriteConfigResponse r;
  return c.Done(c.stub.WriteConfig(c.Call().get(), req, &r), r, [&] {
    return absl::StrFormat("read back %#0*x\n", 2 + 2 * req.width(), r.read_back());
  });
}

// --bdf for stats and mapping.
template <typename Request>
absl::Status SetBdfFilter(const Context& c, Request* req) {
  if (c.options.bdf.empty()) return absl::OkStatus();
  auto bdf = ParseBdf(c.options.bdf);
  if (!bdf.ok()) return bdf.status();
  *req->mutable_bdf() = *bdf;
  return absl::OkStatus();
}

int Stats(const Context& c, const Operands& ops) {
  if (!ops.empty()) return c.UsageError("usage: stats [--registers] [--kvm] [--bdf=BDF]");
  v1::GetStatsRequest req;
  req.set_include_config_registers(c.options.registers);
  req.set_include_kvm(c.options.kvm);
  if (absl::Status st = SetBdfFilter(c, &req); !st.ok())
    return c.UsageError(std::string(st.message()));
  v1::GetStatsResponse r;
  return c.Done(c.stub.GetStats(c.Call().get(), req, &r), r, [&] { return FormatStats(r); });
}

int ResetStats(const Context& c, const Operands& ops) {
  static const std::map<std::string, v1::StatsScope> kScopes = {
      {"exits", v1::STATS_SCOPE_EXITS},
      {"config", v1::STATS_SCOPE_CONFIG},
      {"mapping", v1::STATS_SCOPE_MAPPING},
      {"kvm", v1::STATS_SCOPE_KVM}};
  v1::ResetStatsRequest req;
  for (const std::string& s : ops) {
    auto it = kScopes.find(s);
    if (it == kScopes.end())
      return c.UsageError("reset-stats: scopes are exits, config, mapping, kvm");
    req.add_scopes(it->second);
  }
  v1::ResetStatsResponse r;
  return c.Done(c.stub.ResetStats(c.Call().get(), req, &r), r, [] { return "reset\n"; });
}

int Mapping(const Context& c, const Operands& ops) {
  if (!ops.empty()) return c.UsageError("usage: mapping [--bdf=BDF]");
  v1::GetMappingStatsRequest req;
  if (absl::Status st = SetBdfFilter(c, &req); !st.ok())
    return c.UsageError(std::string(st.message()));
  v1::GetMappingStatsResponse r;
  return c.Done(c.stub.GetMappingStats(c.Call().get(), req, &r), r,
                [&] { return FormatMapping(r.mapping()); });
}

int SetPolicy(const Context& c, const Operands& ops) {
  if (ops.size() > 1)
    return c.UsageError("usage: set-policy [eager|deferred] [--cost-ns-per-gib=N]");
  v1::SetBarPolicyRequest req;
  if (!ops.empty()) {
    if (ops[0] != "eager" && ops[0] != "deferred")
      return c.UsageError("set-policy: eager or deferred");
    req.set_policy(ops[0] == "eager" ? v1::BAR_POLICY_EAGER : v1::BAR_POLICY_DEFERRED);
  }
  if (c.options.cost_ns_per_gib) req.set_cost_ns_per_gib(*c.options.cost_ns_per_gib);
  v1::SetBarPolicyResponse r;
  return c.Done(c.stub.SetBarPolicy(c.Call().get(), req, &r), r, [&] {
    return absl::StrFormat("bar policy %s, cost model %d ns/GiB\n",
                           r.policy() == v1::BAR_POLICY_EAGER ? "eager" : "deferred",
                           r.cost_ns_per_gib());
  });
}

absl::Status OnOff(const std::string& flag, const std::string& value,
                   std::function<void(bool)> set) {
  if (value.empty()) return absl::OkStatus();
  if (value != "on" && value != "off") return absl::InvalidArgumentError(flag + ": on or off");
  set(value == "on");
  return absl::OkStatus();
}

int SetConfigMode(const Context& c, const Operands& ops) {
  if (!ops.empty())
    return c.UsageError("usage: set-config-mode [--pio=on|off] [--ecam-fast-path=on|off]");
  v1::SetConfigModeRequest req;
  absl::Status st = OnOff("--pio", c.options.pio, [&](bool b) { req.set_pio_enabled(b); });
  if (st.ok())
    st = OnOff("--ecam-fast-path", c.options.ecam_fast_path,
               [&](bool b) { req.set_ecam_fast_path(b); });
  if (!st.ok()) return c.UsageError(std::string(st.message()));
  v1::SetConfigModeResponse r;
  return c.Done(c.stub.SetConfigMode(c.Call().get(), req, &r), r, [&] {
    return absl::StrFormat("pio %s, ecam fast path %s\n",
                           r.config_mode().pio_enabled() ? "on" : "off",
                           r.config_mode().ecam_fast_path() ? "on" : "off");
  });
}

absl::Status ParseKinds(const std::string& kinds, v1::WatchEventsRequest* req) {
  static const std::map<std::string, v1::EventKind> kKinds = {
      {"bar", v1::EVENT_KIND_BAR_MAPPING},
      {"config", v1::EVENT_KIND_CONFIG_ACCESS},
      {"boot", v1::EVENT_KIND_BOOT_MARKER},
      {"state", v1::EVENT_KIND_STATE_CHANGE},
      {"timeout", v1::EVENT_KIND_BOOT_TIMEOUT}};
  for (absl::string_view k : absl::StrSplit(kinds, ',', absl::SkipEmpty())) {
    auto it = kKinds.find(std::string(k));
    if (it == kKinds.end()) {
      return absl::InvalidArgumentError("--kinds: bar, config, boot, state, timeout");
    }
    req->add_kinds(it->second);
  }
  return absl::OkStatus();
}

void PrintEvents(const Context& c, const v1::WatchEventsResponse& r, int64_t* left) {
  if (r.dropped() != 0 && !c.options.json)
    c.out << "!! lost " << r.dropped() << " events (slow reader)\n";
  if (c.options.json) {
    google::protobuf::util::JsonPrintOptions p;
    p.preserve_proto_field_names = true;
    std::string line;
    (void)google::protobuf::util::MessageToJsonString(r, &line, p);
    c.out << line << "\n";
  }
  for (const v1::Event& e : r.events()) {
    if (!c.options.json) c.out << FormatEvent(e) << "\n";
    if (*left > 0) --*left;
  }
  c.out.flush();
}

int Watch(const Context& c, const Operands& ops) {
  if (!ops.empty())
    return c.UsageError(
        "usage: watch [--kinds=bar,config,boot,state,timeout] [--buffer=N] [--count=N]");
  v1::WatchEventsRequest req;
  if (absl::Status st = ParseKinds(c.options.kinds, &req); !st.ok())
    return c.UsageError(std::string(st.message()));
  req.set_buffer_events(c.options.buffer);
  grpc::ClientContext ctx;
  auto reader = c.stub.WatchEvents(&ctx, req);
  v1::WatchEventsResponse r;
  int64_t left = c.options.count;
  while (left != 0 && reader->Read(&r)) PrintEvents(c, r, &left);
  if (left == 0) {
    ctx.TryCancel();
    return kOk;
  }
  const grpc::Status st = reader->Finish();
  return st.ok() ? kOk : c.Fail(st);
}

int Metrics(const Context& c, const Operands& ops) {
  if (!ops.empty()) return c.UsageError("usage: metrics [--format=prometheus|json]");
  v1::GetMetricsRequest req;
  if (c.options.format == "json") {
    req.set_format(v1::METRICS_FORMAT_JSON);
  } else if (c.options.format != "prometheus") {
    return c.UsageError("--format: prometheus or json");
  }
  v1::GetMetricsResponse r;
  const grpc::Status st = c.stub.GetMetrics(c.Call().get(), req, &r);
  if (!st.ok()) return c.Fail(st);
  c.out << r.text() << (req.format() == v1::METRICS_FORMAT_JSON ? "\n" : "");
  return kOk;
}

const std::map<std::string, Handler>& Commands() {
  static const auto* commands = new std::map<std::string, Handler>{
      {"info", Info},         {"pause", Pause},          {"resume", Resume},
      {"shutdown", Shutdown}, {"devices", Devices},      {"read", Read},
      {"write", Write},       {"stats", Stats},          {"reset-stats", ResetStats},
      {"mapping", Mapping},   {"set-policy", SetPolicy}, {"set-config-mode", SetConfigMode},
      {"watch", Watch},       {"metrics", Metrics}};
  return *commands;
}

}  // namespace

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return kUsage;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kUnreachable;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kPrecondition;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExhausted;
    default:
      return kServerError;
  }
}

absl::StatusOr<uint64_t> ParseNumber(absl::string_view text) {
  uint64_t v = 0;
  const bool hex = absl::StartsWithIgnoreCase(text, "0x");
  const bool ok = hex ? absl::SimpleHexAtoi(text.substr(2), &v) : absl::SimpleAtoi(text, &v);
  if (!ok || text.empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a number", text));
  }
  return v;
}

absl::StatusOr<v1::Bdf> ParseBdf(absl::string_view text) {
  const absl::Status bad = absl::InvalidArgumentError(
      absl::StrFormat("BDF '%s': want BB:DD.F or DD.F (hex), e.g. 00:01.0", text));
  std::vector<absl::string_view> bus_rest = absl::StrSplit(text, ':');
  if (bus_rest.size() > 2) return bad;
  std::vector<absl::string_view> dev_fn = absl::StrSplit(bus_rest.back(), '.');
  if (dev_fn.size() != 2) return bad;
  uint32_t bus = 0, dev = 0, fn = 0;
  if (bus_rest.size() == 2 && !absl::SimpleHexAtoi(bus_rest[0], &bus)) return bad;
  if (!absl::SimpleHexAtoi(dev_fn[0], &dev) || !absl::SimpleHexAtoi(dev_fn[1], &fn)) return bad;
  v1::Bdf b;
  b.set_bus(bus);
  b.set_device(dev);
  b.set_function(fn);
  return b;
}

int Run(const Options& options, const std::vector<std::string>& args,
        v1::VmService::StubInterface& stub, std::ostream& out, std::ostream& err) {
  Context c(options, stub, out, err);
  if (args.empty()) return c.UsageError("no command\n" + Usage());
  auto it = Commands().find(args[0]);
  if (it == Commands().end()) return c.UsageError("unknown command '" + args[0] + "'\n" + Usage());
  return it->second(c, Operands(args.begin() + 1, args.end()));
}

std::string Usage() {
  return R"(usage: pcivmmctl [--socket=PATH | --address=HOST:PORT] [--json] [--timeout=10s] COMMAND
commands:
  info                                   VM state, configuration, boot time, memory
  pause | resume | shutdown              life cycle
  devices                                PCI functions and BARs
  read BDF OFFSET [WIDTH]                host-side config read (width 1, 2 or 4; default 4)
  write BDF OFFSET WIDTH VALUE           host-side config write (goes through the vBAR mapper)
  stats [--registers] [--kvm] [--bdf=BDF]   exit and config-access counters
  reset-stats [exits|config|mapping|kvm]...  zero counters (all scopes by default)
  mapping [--bdf=BDF]                    vBAR mapper counters and ioctl histograms
  set-policy [eager|deferred] [--cost-ns-per-gib=N]
  set-config-mode [--pio=on|off] [--ecam-fast-path=on|off]
  watch [--kinds=bar,config,boot,state,timeout] [--buffer=N] [--count=N]   the event feed
  metrics [--format=prometheus|json]
exit status: 0 ok, 1 other server error, 2 usage or INVALID_ARGUMENT, 3 daemon unreachable,
  4 NOT_FOUND, 5 FAILED_PRECONDITION, 6 RESOURCE_EXHAUSTED
)";
}

}  // namespace pcivmm::ctl
