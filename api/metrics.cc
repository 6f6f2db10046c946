#include "api/metrics.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"

namespace pcivmm::api {
namespace {

// Prometheus text format: label values escape backslash, double quote and newline.
std::string Escape(absl::string_view v) {
  return absl::StrReplaceAll(v, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

class PromText {
 public:
  void Family(absl::string_view name, absl::string_view type, absl::string_view help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  }
  void Sample(absl::string_view name, absl::string_view labels, uint64_t value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                    value, "\n");
  }
  void Seconds(absl::string_view name, absl::string_view labels, uint64_t ns) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                    absl::StrFormat("%.9g", static_cast<double>(ns) / 1e9), "\n");
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(absl::string_view key, absl::string_view value) {
  return absl::StrCat(key, "=\"", Escape(value), "\"");
}

std::string PathName(v1::ConfigPath p) {
  return absl::AsciiStrToLower(v1::ConfigPath_Name(p).substr(sizeof("CONFIG_PATH_") - 1));
}

std::string BdfName(const v1::Bdf& b) {
  return absl::StrFormat("%02x:%02x.%x", b.bus(), b.device(), b.function());
}

void RenderVm(const v1::GetVmInfoResponse& info, PromText* p) {
  p->Family("pcivmm_vm_state", "gauge", "1 for the VM's current state");
  for (int s = v1::VM_STATE_CREATED; s <= v1::VM_STATE_STOPPED; ++s) {
    const auto state = static_cast<v1::VmState>(s);
    p->Sample("pcivmm_vm_state", Label("state", v1::VmState_Name(state).substr(9)),
              info.state() == state ? 1 : 0);
  }
  p->Family("pcivmm_kvm_info", "gauge", "1, labelled with the KVM flavour and where it runs");
  p->Sample(
      "pcivmm_kvm_info",
      absl::StrCat(Label("flavour", info.kvm().flavour()), ",", Label("where", info.kvm().where())),
      1);
  p->Family("pcivmm_uptime_seconds", "gauge", "Time since the VM was created");
  p->Seconds("pcivmm_uptime_seconds", "", info.uptime_ns());
  if (info.has_boot_ns()) {
    p->Family("pcivmm_boot_seconds", "gauge", "VM start to the guest's boot marker");
    p->Seconds("pcivmm_boot_seconds", "", info.boot_ns());
  }
  if (info.boot_profile().phases_size() > 0) {
    p->Family("pcivmm_boot_phase_seconds", "gauge",
              "Process start to each boot phase reached (vmm/base/boot_profile.h)");
    for (const v1::BootProfile::Phase& ph : info.boot_profile().phases()) {
      p->Seconds("pcivmm_boot_phase_seconds", Label("phase", ph.name()),
                 static_cast<uint64_t>(std::max<int64_t>(ph.ns(), 0)));
    }
  }
  p->Family("pcivmm_memory_bytes", "gauge",
            "Host memory: rss (VmRSS) and its rss_anon/rss_file/rss_shmem parts, guest_ram "
            "(resident guest RAM), overhead (rss - guest_ram), ecam_shadow");
  const v1::HostMemory& m = info.memory();
  p->Sample("pcivmm_memory_bytes", Label("kind", "rss"), m.rss_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "guest_ram"), m.guest_ram_resident_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "overhead"), m.overhead_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "ecam_shadow"), m.ecam_shadow_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "rss_anon"), m.rss_anon_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "rss_file"), m.rss_file_bytes());
  p->Sample("pcivmm_memory_bytes", Label("kind", "rss_shmem"), m.rss_shmem_bytes());
  p->Family("pcivmm_ecam_fast_path_slots", "gauge", "Read-only memslots of the ECAM fast path");
  p->Sample("pcivmm_ecam_fast_path_slots", "", info.ecam_fast_path().slots());
  p->Family("pcivmm_config_mode", "gauge", "1 when the configuration path is on");
  p->Sample("pcivmm_config_mode", Label("path", "pio"), info.config_mode().pio_enabled());
  p->Sample("pcivmm_config_mode", Label("path", "ecam_fast_path"),
            info.config_mode().ecam_fast_path());
}

void RenderExits(const v1::ExitStats& e, PromText* p) {
  p->Family("pcivmm_exits_total", "counter", "VM exits by KVM exit reason");
  for (const auto& r : e.by_reason()) {
    p->Sample("pcivmm_exits_total", Label("reason", r.reason()), r.count());
  }
  p->Family("pcivmm_vcpu_exits_total", "counter", "VM exits per vCPU and reason");
  for (const auto& v : e.by_vcpu()) {
    for (const auto& r : v.by_reason()) {
      p->Sample(
          "pcivmm_vcpu_exits_total",
          absl::StrCat(Label("vcpu", absl::StrCat(v.vcpu())), ",", Label("reason", r.reason())),
          r.count());
    }
  }
  p->Family("pcivmm_pio_exits_total", "counter", "Port I/O exits by port and direction");
  for (const auto& port : e.by_port()) {
    const std::string l = Label("port", absl::StrFormat("%#06x", port.port()));
    p->Sample("pcivmm_pio_exits_total", absl::StrCat(l, ",", Label("direction", "read")),
              port.reads());
    p->Sample("pcivmm_pio_exits_total", absl::StrCat(l, ",", Label("direction", "write")),
              port.writes());
  }
  p->Family("pcivmm_mmio_exits_total", "counter", "MMIO exits by region and direction");
  for (const auto& r : e.by_mmio_region()) {
    const std::string l = Label("region", r.name());
    p->Sample("pcivmm_mmio_exits_total", absl::StrCat(l, ",", Label("direction", "read")),
              r.reads());
    p->Sample("pcivmm_mmio_exits_total", absl::StrCat(l, ",", Label("direction", "write")),
              r.writes());
  }
}

void RenderConfig(const v1::ConfigStats& c, PromText* p) {
  p->Family("pcivmm_config_accesses_total", "counter",
            "Configuration accesses that reached the bus, by path and direction");
  for (const auto& path : c.by_path()) {
    const std::string l = Label("path", PathName(path.path()));
    p->Sample("pcivmm_config_accesses_total", absl::StrCat(l, ",", Label("direction", "read")),
              path.reads());
    p->Sample("pcivmm_config_accesses_total", absl::StrCat(l, ",", Label("direction", "write")),
              path.writes());
  }
  p->Family("pcivmm_config_malformed_total", "counter", "Malformed configuration accesses");
  for (const auto& path : c.by_path()) {
    p->Sample("pcivmm_config_malformed_total", Label("path", PathName(path.path())),
              path.malformed());
  }
  p->Family("pcivmm_config_function_accesses_total", "counter",
            "Configuration accesses per bus-0 function, path and direction");
  for (const auto& f : c.by_function()) {
    const std::string l =
        absl::StrCat(Label("bdf", BdfName(f.bdf())), ",", Label("path", PathName(f.path())));
    p->Sample("pcivmm_config_function_accesses_total",
              absl::StrCat(l, ",", Label("direction", "read")), f.reads());
    p->Sample("pcivmm_config_function_accesses_total",
              absl::StrCat(l, ",", Label("direction", "write")), f.writes());
  }
}

void RenderHistogram(const std::string& labels, const v1::LatencyHistogram& h, PromText* p) {
  uint64_t cumulative = 0;
  for (const auto& b : h.buckets()) {
    cumulative += b.count();
    const std::string le = absl::StrFormat("%.9g", static_cast<double>(b.upper_ns()) / 1e9);
    p->Sample("pcivmm_bar_ioctl_seconds_bucket", absl::StrCat(labels, ",", Label("le", le)),
              cumulative);
  }
  p->Sample("pcivmm_bar_ioctl_seconds_bucket", absl::StrCat(labels, ",", Label("le", "+Inf")),
            h.count());
  p->Seconds("pcivmm_bar_ioctl_seconds_sum", labels, h.sum_ns());
  p->Sample("pcivmm_bar_ioctl_seconds_count", labels, h.count());
}

void RenderMapping(const v1::MappingStats& m, PromText* p) {
  p->Family("pcivmm_bar_operations_total", "counter",
            "vBAR mapper operations per memory BAR: map, unmap, move, conflict");
  for (const auto& b : m.bars()) {
    const std::string l =
        absl::StrCat(Label("bdf", BdfName(b.bdf())), ",", Label("device", b.device()), ",",
                     Label("bar", absl::StrCat(b.bar())));
    for (auto [op, n] : {std::pair{"map", b.maps()}, std::pair{"unmap", b.unmaps()},
                         std::pair{"move", b.moves()}, std::pair{"conflict", b.conflicts()}}) {
      p->Sample("pcivmm_bar_operations_total", absl::StrCat(l, ",", Label("op", op)), n);
    }
  }
  p->Family("pcivmm_bar_ioctl_seconds", "histogram",
            "Time of each map, unmap and move around the memslot ioctl(s)");
  for (const auto& b : m.bars()) {
    RenderHistogram(absl::StrCat(Label("bdf", BdfName(b.bdf())), ",", Label("device", b.device()),
                                 ",", Label("bar", absl::StrCat(b.bar()))),
                    b.ioctl(), p);
  }
  p->Family("pcivmm_bar_modelled_seconds_total", "counter", "The cost model's delay per BAR");
  for (const auto& b : m.bars()) {
    p->Seconds("pcivmm_bar_modelled_seconds_total",
               absl::StrCat(Label("bdf", BdfName(b.bdf())), ",", Label("device", b.device()), ",",
                            Label("bar", absl::StrCat(b.bar()))),
               b.modelled_ns());
  }
}

}  // namespace

v1::MetricsSample SampleMetrics(const VmBackend& backend) {
  v1::MetricsSample s;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  s.set_unix_time_ns(static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull +
                     static_cast<uint64_t>(ts.tv_nsec));
  *s.mutable_info() = backend.Info();
  *s.mutable_stats() = backend.Stats({});
  s.mutable_info()->set_state(s.stats().state());
  *s.mutable_mapping() = backend.MappingStats(std::nullopt);
  return s;
}

std::string RenderPrometheus(const v1::MetricsSample& sample) {
  PromText p;
  RenderVm(sample.info(), &p);
  RenderExits(sample.stats().exits(), &p);
  RenderConfig(sample.stats().config(), &p);
  RenderMapping(sample.mapping(), &p);
  return p.Take();
}

std::string RenderJsonLine(const v1::MetricsSample& sample) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(sample, &out, options);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsFileWriter>> MetricsFileWriter::Start(
    const std::string& path, absl::Duration interval, const VmBackend* backend) {
  if (interval < absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("--metrics-interval: below 10ms");
  }
  FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return absl::ErrnoToStatus(errno, "--metrics-file " + path);
  std::unique_ptr<MetricsFileWriter> w(new MetricsFileWriter(f, interval, backend));
  w->thread_ = std::thread([raw = w.get()] { raw->Loop(); });
  return w;
}

MetricsFileWriter::~MetricsFileWriter() { Stop(); }

void MetricsFileWriter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  WriteLine();
}

void MetricsFileWriter::Loop() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_)) {
    mu_.Unlock();
    WriteLine();
    mu_.Lock();
  }
}

void MetricsFileWriter::WriteLine() {
  const std::string line = RenderJsonLine(SampleMetrics(backend_)) + "\n";
  absl::MutexLock lock(&mu_);
  std::fwrite(line.data(), 1, line.size(), file_.get());
  std::fflush(file_.get());
  ++lines_;
}

uint64_t MetricsFileWriter::lines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

}  // namespace pcivmm::api
