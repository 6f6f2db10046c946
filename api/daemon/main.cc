// pcivmm: run a guest on KVM, report its exits, and (with --api-socket or --api-tcp) serve
// the pcivmm.v1 control API while it runs.
#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "api/api_server.h"
#include "api/config_convert.h"
#include "api/daemon/cli_usage.h"
#include "api/daemon/daemon_exit.h"
#include "api/daemon/sandbox.h"
#include "api/flag_names.h"
#include "api/gpu_topology.h"
#include "api/listeners.h"
#include "api/metrics.h"
#include "api/vm_host.h"
#include "api/vm_service.h"
#include "google/protobuf/util/json_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/kvm/exit_report.h"
#include "vmm/kvm/kvm_flavour.h"
#include "vmm/platform/boot_watchdog.h"

ABSL_FLAG(std::string, config_file, "",
          "VM configuration: a pcivmm.v1.VmConfig in the proto3 JSON mapping; flags given on the "
          "command line override its fields");
ABSL_FLAG(bool, print_config, false, "print the effective VmConfig as JSON and exit");
ABSL_FLAG(std::string, guest_image, "", "freestanding test guest (flat binary) to run");
ABSL_FLAG(uint64_t, guest_arg, 0, "argument passed to the test guest in rdi");
ABSL_FLAG(std::string, kernel, "", "Linux bzImage to boot directly (instead of --guest-image)");
ABSL_FLAG(std::string, initrd, "", "initramfs for --kernel");
ABSL_FLAG(std::string, cmdline, "", "kernel command line for --kernel");
ABSL_FLAG(bool, pvm_guest_kernel, false,
          "the --kernel is built to run as a PVM guest: boot it even where /dev/kvm is PVM "
          "(refused otherwise: an unmodified kernel hangs there)");
ABSL_FLAG(std::string, console, "", "write the guest console to this file instead of stdout");
ABSL_FLAG(uint64_t, ram_mib, 64, "guest RAM in MiB");
ABSL_FLAG(int, vcpus, 1, "number of vCPUs");
ABSL_FLAG(bool, stats, true, "print exit counts when the guest stops");
ABSL_FLAG(int, gpus, 0, "GPU-like emulated passthrough devices at slots 1..N");
ABSL_FLAG(uint64_t, gpu_bar1_gib, 128, "size of each GPU's 64-bit prefetchable BAR1 in GiB");
ABSL_FLAG(std::string, topology, "flat",
          "where --gpus sit: flat (bus 0), root-ports (each behind a PCIe root port) or switch "
          "(behind one PCIe switch below a root port)");
ABSL_FLAG(bool, pci_pio, true, "serve PCI config mechanism #1 (0xCF8/0xCFC); off: all-ones");
ABSL_FLAG(bool, ecam_fast_path, false,
          "serve ECAM reads from read-only shadow memory slots (zero exits; writes trap)");
ABSL_FLAG(int, ecam_buses, 1, "buses decoded by the ECAM window at 0xE0000000 (1 MiB each)");
ABSL_FLAG(bool, memory_decode, true, "hand devices off with PCI_COMMAND_MEMORY set");
ABSL_FLAG(std::string, bar_policy, "eager",
          "vBAR mapping policy: eager (map/unmap on every decode toggle) or deferred");
ABSL_FLAG(uint64_t, bar_cost_ns_per_gib, 0,
          "cost model: extra delay per GiB mapped or unmapped (14062500 = 1.8 s per 128 GiB)");
ABSL_FLAG(std::vector<std::string>, vfio, {},
          "pass a host PCI device through with VFIO: its address (0000:03:00.0 or 03:00.0), bound "
          "to vfio-pci; repeatable (or comma-separated); it takes the next free slot");
ABSL_FLAG(bool, test_devices, true,
          "attach the test devices of pcivmm_guest_abi.h (echo ports, stream port, scratch MMIO)");
ABSL_FLAG(std::string, api_socket, "",
          "serve the control API on this Unix socket (created 0600; a stale file is replaced)");
ABSL_FLAG(bool, api_tcp_allow_remote, false,
          "let --api-tcp bind a non-loopback address: the API has no authentication, so anyone "
          "who reaches the port controls the VM");
ABSL_FLAG(std::string, api_tcp, "",
          "also serve the API on TCP: PORT (127.0.0.1) or HOST:PORT; unauthenticated");
ABSL_FLAG(int, api_max_connections, 32,
          "API connections open at once (Unix and TCP together); past the cap a client's calls "
          "fail with RESOURCE_EXHAUSTED naming this flag");
ABSL_FLAG(bool, paused, false, "start with every vCPU parked; ResumeVm starts the guest");
ABSL_FLAG(bool, pause_on_boot_marker, false,
          "park every vCPU right after the guest's first boot-marker write");
ABSL_FLAG(bool, exit_with_guest, false,
          "with the API on: exit when the guest stops instead of serving until ShutdownVm");
ABSL_FLAG(std::string, metrics_file, "", "append a JSON line of all metrics here periodically");
// A string, parsed with absl::ParseDuration: a Duration flag's sequence lock uses
// atomic_thread_fence, which GCC refuses under -fsanitize=thread.
ABSL_FLAG(std::string, metrics_interval, "1s", "period of --metrics-file lines (e.g. 500ms, 2s)");
// A string too, for the same reason.
ABSL_FLAG(
    std::string, seccomp, "kill",
    "system-call filter per thread role once set-up is done: kill (a forbidden call ends "
    "the process with SIGSYS and a line naming it), log (allowed, logged by the kernel), off");
ABSL_FLAG(bool, seccomp_test_probe, false,
          "test only: a port (0x519) whose write makes a system call the vCPU filter forbids");
ABSL_FLAG(std::string, boot_timeout, "",
          "no boot marker this long after the guest starts (e.g. 30s, 2m; empty or 0: off): print "
          "the last console line and each vCPU's RIP, last exit and exit count, and exit with "
          "status 76; with the API on (and no --exit-with-guest), publish an "
          "EVENT_KIND_BOOT_TIMEOUT event instead and keep running");

namespace pcivmm::api {

// absl keeps the last of a repeated list flag: joins every "--NAME=V" / "--NAME V" into one
// "--NAME=V1,V2" (after NormalizeFlagNames).
std::vector<std::string> JoinRepeatedFlag(std::vector<std::string> args, const std::string& name) {
  const std::string eq = "--" + name + "=";
  std::vector<std::string> out;
  std::vector<std::string> values;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    if (args[i].rfind(eq, 0) == 0) {
      values.push_back(args[i].substr(eq.size()));
    } else if (args[i] == "--" + name && i + 1 < args.size()) {
      values.push_back(args[++i]);
    } else {
      out.push_back(args[i]);
    }
  }
  if (!values.empty()) out.insert(out.begin() + 1, eq + absl::StrJoin(values, ","));
  return out;
}

namespace {

constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "pcivmm: a VMM for fast, exactly measured PCI config access and BAR mapping\n\n"
    "usage: pcivmm --guest-image=FILE [flags]             run a freestanding test guest\n"
    "       pcivmm --kernel=BZIMAGE [--initrd=FILE] [flags]  boot Linux directly\n"
    "       pcivmm --config-file=FILE [flags]             a VmConfig in JSON; flags override it\n"
    "       pcivmm --help | --version\n"
    "Flags take --flag-name or --flag_name. Exit status: the guest's (0xF4 port) or 0 on\n"
    "power-off; 2 bad usage; 70 triple fault, 71 failed VM entry, 72 KVM internal error,\n"
    "73 guest crash, 74 unhandled exit, 75 VMM error, 76 boot timeout; 128+N signal N\n"
    "(130 SIGINT, 143 SIGTERM, 129 SIGHUP, 131 SIGQUIT).";

const FlagGroup kFlagGroups[] = {
    {"Guest",
     {"guest_image", "guest_arg", "kernel", "initrd", "cmdline", "pvm_guest_kernel", "ram_mib",
      "vcpus", "console", "config_file", "print_config"}},
    {"Devices", {"gpus", "gpu_bar1_gib", "topology", "vfio", "test_devices"}},
    {"PCI config paths", {"pci_pio", "ecam_fast_path", "ecam_buses"}},
    {"vBAR mapper", {"memory_decode", "bar_policy", "bar_cost_ns_per_gib"}},
    {"API",
     {"api_socket", "api_tcp", "api_tcp_allow_remote", "api_max_connections", "paused",
      "pause_on_boot_marker", "exit_with_guest"}},
    {"Diagnostics", {"stats", "boot_timeout", "metrics_file", "metrics_interval"}},
    {"Sandbox", {"seccomp", "seccomp_test_probe"}},
};

// --help (-h, --helpfull) and --version, answered before absl parses anything: absl's own
// help lists only flags of files named like the program, which pcivmm's are not.
std::optional<int> HelpOrVersion(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] == "--help" || args[i] == "-h" || args[i] == "--helpfull") {
      std::fputs(FormatUsage(kUsage, kFlagGroups, "api/daemon/main.cc").c_str(), stdout);
      return 0;
    }
    if (args[i] == "--version") {
      std::fputs(VersionText().c_str(), stdout);
      return 0;
    }
  }
  return std::nullopt;
}

// The flags named on the command line (this absl keeps IsSpecifiedOnCommandLine private):
// "--name", "--name=value", "--noname" for booleans.
std::set<std::string>& GivenFlags() {
  static auto* given = new std::set<std::string>();
  return *given;
}

void RecordGivenFlags(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i].rfind("--", 0) != 0) continue;
    const std::string name = args[i].substr(2, args[i].find('=') - 2);
    GivenFlags().insert(name);
    if (name.rfind("no", 0) == 0) GivenFlags().insert(name.substr(2));
  }
}

template <typename T>
bool Given(const absl::Flag<T>& flag) {
  return GivenFlags().contains(std::string{absl::GetFlagReflectionHandle(flag).Name()});
}

absl::Status GuestFlags(v1::VmConfig* c) {
  if (Given(FLAGS_guest_image) && Given(FLAGS_kernel)) {
    return absl::InvalidArgumentError("--guest-image and --kernel: choose one guest");
  }
  if (Given(FLAGS_guest_image))
    c->mutable_test_guest()->set_image_path(absl::GetFlag(FLAGS_guest_image));
  if (Given(FLAGS_guest_arg)) c->mutable_test_guest()->set_arg(absl::GetFlag(FLAGS_guest_arg));
  if (Given(FLAGS_kernel)) c->mutable_linux_boot()->set_kernel_path(absl::GetFlag(FLAGS_kernel));
  if (Given(FLAGS_initrd)) c->mutable_linux_boot()->set_initrd_path(absl::GetFlag(FLAGS_initrd));
  if (Given(FLAGS_cmdline)) c->mutable_linux_boot()->set_cmdline(absl::GetFlag(FLAGS_cmdline));
  if (Given(FLAGS_pvm_guest_kernel)) {
    c->mutable_linux_boot()->set_pvm_guest_kernel(absl::GetFlag(FLAGS_pvm_guest_kernel));
  }
  if (Given(FLAGS_console)) c->set_console_path(absl::GetFlag(FLAGS_console));
  if (Given(FLAGS_test_devices)) c->set_test_devices(absl::GetFlag(FLAGS_test_devices));
  return absl::OkStatus();
}

// A count flag's value; a negative one is an error naming the flag (never read as 0).
absl::StatusOr<uint32_t> Count(const absl::Flag<int>& flag) {
  const int v = absl::GetFlag(flag);
  if (v >= 0) return static_cast<uint32_t>(v);
  return absl::InvalidArgumentError(absl::StrFormat(
      "--%s: %d is negative", DashedFlagName(absl::GetFlagReflectionHandle(flag).Name()), v));
}

absl::Status MachineAndPciFlags(v1::VmConfig* c) {
  if (Given(FLAGS_ram_mib)) c->mutable_machine()->set_ram_mib(absl::GetFlag(FLAGS_ram_mib));
  if (Given(FLAGS_vcpus)) {
    PCIVMM_ASSIGN_OR_RETURN(const uint32_t vcpus, Count(FLAGS_vcpus));
    c->mutable_machine()->set_vcpus(vcpus);
  }
  v1::PciConfig* p = c->mutable_pci();
  if (Given(FLAGS_ecam_buses)) {
    PCIVMM_ASSIGN_OR_RETURN(const uint32_t buses, Count(FLAGS_ecam_buses));
    p->set_ecam_buses(buses);
  }
  if (Given(FLAGS_pci_pio)) p->set_pio_enabled(absl::GetFlag(FLAGS_pci_pio));
  if (Given(FLAGS_ecam_fast_path)) p->set_ecam_fast_path(absl::GetFlag(FLAGS_ecam_fast_path));
  if (Given(FLAGS_memory_decode)) p->set_memory_decode(absl::GetFlag(FLAGS_memory_decode));
  if (Given(FLAGS_bar_cost_ns_per_gib)) {
    p->set_bar_cost_ns_per_gib(absl::GetFlag(FLAGS_bar_cost_ns_per_gib));
  }
  for (const std::string& address : absl::GetFlag(FLAGS_vfio)) {
    p->add_vfio_devices()->set_host_address(address);
  }
  if (Given(FLAGS_bar_policy)) {
    const std::string policy = absl::GetFlag(FLAGS_bar_policy);
    if (policy != "eager" && policy != "deferred") {
      return absl::InvalidArgumentError(
          absl::StrFormat("--bar-policy: '%s' is neither eager nor deferred", policy));
    }
    p->set_bar_policy(policy == "eager" ? v1::BAR_POLICY_EAGER : v1::BAR_POLICY_DEFERRED);
  }
  return absl::OkStatus();
}

// --gpus=N replaces the device list with N GPU-like devices; --gpu-bar1-gib alone resizes
// the BAR1 of the devices the config file declared.
absl::Status GpuFlags(v1::VmConfig* merged) {
  v1::PciConfig* p = merged->mutable_pci();
  if (Given(FLAGS_topology) && !Given(FLAGS_gpus)) {
    return absl::InvalidArgumentError("--topology: places the --gpus; give --gpus too");
  }
  if (Given(FLAGS_gpus)) {
    PCIVMM_ASSIGN_OR_RETURN(const uint32_t gpus, Count(FLAGS_gpus));
    return SetGpuTopology(gpus, absl::GetFlag(FLAGS_gpu_bar1_gib), absl::GetFlag(FLAGS_topology),
                          p);
  }
  if (Given(FLAGS_gpu_bar1_gib)) {
    for (v1::PciDevice& d : *p->mutable_devices())
      d.set_bar1_gib(absl::GetFlag(FLAGS_gpu_bar1_gib));
  }
  return absl::OkStatus();
}

// The config file (if any) with the command line's flags on top.
absl::StatusOr<v1::VmConfig> EffectiveConfig() {
  v1::VmConfig config;
  if (const std::string path = absl::GetFlag(FLAGS_config_file); !path.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(config, ReadVmConfigFile(path));
  }
  v1::VmConfig flags;
  PCIVMM_RETURN_IF_ERROR(GuestFlags(&flags));
  PCIVMM_RETURN_IF_ERROR(MachineAndPciFlags(&flags));
  OverlayVmConfig(flags, &config);
  PCIVMM_RETURN_IF_ERROR(GpuFlags(&config));
  return config;
}

int Fail(const absl::Status& status, int code = kvm::kExitStatusVmmError) {
  std::fprintf(stderr, "pcivmm: %s\n", status.ToString().c_str());
  return code;
}

void PrintReport(VmHost& host, const kvm::StopReason& reason) {
  std::fflush(stdout);
  std::fprintf(stderr, "pcivmm: %s (exit status %d)\n", reason.detail.c_str(), reason.exit_code);
  if (std::optional<uint64_t> ns = host.boot_marker().boot_ns()) {
    std::fprintf(stderr, "pcivmm: boot marker after %.1f ms\n", static_cast<double>(*ns) / 1e6);
  }
  if (!absl::GetFlag(FLAGS_stats)) return;
  platform::Machine& m = host.machine();
  std::fputs(m.profile().Format().c_str(), stdout);
  const v1::HostMemory mem = host.Info().memory();
  absl::PrintF(
      "memory: VmRSS %d KiB (anon %d, file %d, shmem %d), guest RAM resident %d KiB, "
      "overhead %d KiB\n",
      mem.rss_bytes() >> 10, mem.rss_anon_bytes() >> 10, mem.rss_file_bytes() >> 10,
      mem.rss_shmem_bytes() >> 10, mem.guest_ram_resident_bytes() >> 10,
      mem.overhead_bytes() >> 10);
  std::fputs(kvm::FormatExitReport(m.stats(), m.pio(), m.mmio()).c_str(), stdout);
  absl::PrintF("config exits: %d\n", platform::ConfigExitCount(m.stats(), host.pci()));
  std::fputs(platform::FormatConfigStats(host.pci().bus().stats()).c_str(), stdout);
  std::fputs(platform::FormatBarMapping(host.pci().bus(), host.pci().mapper()).c_str(), stdout);
  std::fputs(platform::FormatVfioDevices(host.pci().vfio()).c_str(), stdout);
}

void PrintDevices(VmHost& host) {
  std::fputs(platform::FormatPciDevices(host.pci().bus()).c_str(), stdout);
  if (host.pci().fast_path().enabled()) {
    absl::PrintF("ecam fast path: %d read-only slot(s), shadow %d KiB of host memory\n",
                 host.pci().fast_path().slot_ranges().size(),
                 host.pci().fast_path().shadow_bytes() >> 10);
  }
}

ApiServerOptions ApiOptionsFromFlags() {
  ApiServerOptions o;
  o.unix_socket = absl::GetFlag(FLAGS_api_socket);
  o.tcp = absl::GetFlag(FLAGS_api_tcp);
  o.tcp_allow_remote = absl::GetFlag(FLAGS_api_tcp_allow_remote);
  o.max_connections = absl::GetFlag(FLAGS_api_max_connections);
  return o;
}

absl::StatusOr<std::unique_ptr<ApiServer>> StartApi(VmServiceImpl* service) {
  const ApiServerOptions o = ApiOptionsFromFlags();
  if (o.unix_socket.empty() && o.tcp.empty()) return nullptr;
  PCIVMM_ASSIGN_OR_RETURN(auto server, ApiServer::Start(service, o));
  if (!o.unix_socket.empty())
    std::fprintf(stderr, "pcivmm: API on unix:%s\n", o.unix_socket.c_str());
  if (!o.tcp.empty()) std::fprintf(stderr, "pcivmm: API on tcp port %d\n", server->tcp_port());
  return server;
}

int Serve(VmHost& host, DaemonExit& daemon_exit, const Sandbox& sandbox) {
  VmServiceImpl::Options options;
  options.on_shutdown = [&daemon_exit] { daemon_exit.ShutdownRequested(); };
  VmServiceImpl service(&host, std::move(options));
  std::unique_ptr<MetricsFileWriter> metrics;
  if (const std::string path = absl::GetFlag(FLAGS_metrics_file); !path.empty()) {
    absl::Duration interval;
    if (!absl::ParseDuration(absl::GetFlag(FLAGS_metrics_interval), &interval)) {
      return Fail(absl::InvalidArgumentError("--metrics-interval: not a duration (e.g. 500ms)"),
                  kExitUsage);
    }
    auto w = MetricsFileWriter::Start(path, interval, &host);
    if (!w.ok()) return Fail(w.status(), kExitUsage);
    metrics = std::move(*w);
  }
  if (absl::Status st = sandbox.Confine(host.machine(), absl::GetFlag(FLAGS_seccomp_test_probe));
      !st.ok()) {
    return Fail(st);
  }
  host.Start();
  // The API comes up beside the guest's boot, not before its first KVM_RUN (its threads
  // inherit the process's seccomp filter). The socket path was claimed before the VM existed.
  auto server = StartApi(&service);
  if (!server.ok()) {
    host.machine().RequestStop({kExitUsage, absl::StrCat(server.status().message())});
    host.Wait();
    return Fail(server.status(), kExitUsage);
  }
  const bool api = *server != nullptr;
  if (api) host.machine().profile().Mark(base::BootPhase::kApiReady);
  if (daemon_exit.Wait(/*until_vm_stops=*/!api || absl::GetFlag(FLAGS_exit_with_guest))) {
    if (daemon_exit.signal() != 0) {
      host.machine().RequestStop(SignalStop(daemon_exit.signal()));
    } else {
      host.Shutdown().IgnoreError();
    }
  }
  kvm::StopReason reason = host.Wait();
  // A signal ends the daemon with 128 + its number even when the VM had stopped before.
  if (daemon_exit.signal() != 0) reason = SignalStop(daemon_exit.signal());
  host.events().Close();
  if (api) (*server)->Shutdown(absl::Seconds(2));
  if (metrics) metrics->Stop();
  PrintReport(host, reason);
  return reason.exit_code;
}

int RunMain(std::shared_ptr<base::BootProfile> profile) {
  const kvm::KvmClass kvm = kvm::ClassifyHostKvm();
  std::fprintf(stderr, "pcivmm: KVM: %s (%s); where: %s\n",
               std::string(kvm::FlavourTitle(kvm.flavour)).c_str(), kvm.reason.c_str(),
               std::string(kvm::KvmWhere()).c_str());
  auto config = EffectiveConfig();
  if (!config.ok()) return Fail(config.status(), kExitUsage);
  auto boot_timeout = platform::ParseBootTimeout(absl::GetFlag(FLAGS_boot_timeout));
  if (!boot_timeout.ok()) return Fail(boot_timeout.status(), kExitUsage);
  auto sandbox = Sandbox::Prepare(absl::GetFlag(FLAGS_seccomp));
  if (!sandbox.ok()) return Fail(sandbox.status(), kExitUsage);
  if (absl::GetFlag(FLAGS_print_config)) {
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(*config, &json);
    std::puts(json.c_str());
    return 0;
  }
  auto spec = VmSpecFromConfig(*config);
  if (!spec.ok()) return Fail(spec.status(), kExitUsage);
  if (const std::string path = absl::GetFlag(FLAGS_api_socket); !path.empty()) {
    if (absl::Status st = ClaimUnixSocketPath(path); !st.ok()) return Fail(st, kExitUsage);
  }
  // Before the VM: a bad address or cap is a usage error, not a stopped guest.
  if (absl::Status st = CheckApiServerOptions(ApiOptionsFromFlags()); !st.ok()) {
    return Fail(st, kExitUsage);
  }
  DaemonExit daemon_exit;
  profile->Mark(base::BootPhase::kFlagsParsed);
  VmHost::Options options;
  options.start_paused = absl::GetFlag(FLAGS_paused);
  options.pause_on_boot_marker = absl::GetFlag(FLAGS_pause_on_boot_marker);
  options.on_stopped = [&daemon_exit] { daemon_exit.VmStopped(); };
  options.profile = std::move(profile);
  options.boot_timeout = *boot_timeout;
  options.stop_on_boot_timeout =
      (absl::GetFlag(FLAGS_api_socket).empty() && absl::GetFlag(FLAGS_api_tcp).empty()) ||
      absl::GetFlag(FLAGS_exit_with_guest);
  auto host = VmHost::Create(*spec, std::move(options));
  if (!host.ok()) return Fail(host.status());
  PrintDevices(**host);
  SignalWatcher signals(&daemon_exit);
  return Serve(**host, daemon_exit, *sandbox);
}

}  // namespace
}  // namespace pcivmm::api

int main(int argc, char** argv) {
  // One malloc arena for all threads: glibc would give each busy thread (gRPC's pollers and
  // handlers, the vCPUs) an arena of its own, each keeping freed memory resident. The vCPU
  // run loop does not allocate, so they do not contend for it.
  mallopt(M_ARENA_MAX, 1);
  auto profile = std::make_shared<pcivmm::base::BootProfile>();
  profile->Mark(pcivmm::base::BootPhase::kMain);
  absl::SetProgramUsageMessage(pcivmm::api::kUsage);
  std::vector<std::string> args =
      pcivmm::api::JoinRepeatedFlag(pcivmm::api::NormalizeFlagNames(argc, argv), "vfio");
  if (std::optional<int> rc = pcivmm::api::HelpOrVersion(args)) return *rc;
  std::vector<char*> argp;
  argp.reserve(args.size());
  for (std::string& a : args) argp.push_back(a.data());
  pcivmm::api::RecordGivenFlags(args);
  absl::ParseCommandLine(static_cast<int>(argp.size()), argp.data());
  // Before any thread exists, so every thread inherits the mask (see SignalWatcher).
  sigset_t set = pcivmm::api::SignalWatcher::Signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return pcivmm::api::RunMain(std::move(profile));
}
