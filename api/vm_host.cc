#include "api/vm_host.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "api/config_convert.h"
#include "api/host_memory.h"
#include "api/proto_convert.h"
#include "pci/config_space.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/test_devices.h"
#include "vmm/kvm/exit_dispatcher.h"
#include "vmm/platform/linux_boot.h"

namespace pcivmm::api {
namespace {

constexpr absl::Duration kPauseTimeout = absl::Seconds(30);
// How long the boot watchdog waits for the vCPUs to park before it reports their RIPs as
// unknown (a vCPU stuck in the VMM, not in the guest, never parks).
constexpr absl::Duration kSnapshotTimeout = absl::Seconds(2);

v1::BarKind KindOf(pci::BarKind k) {
  switch (k) {
    case pci::BarKind::kIo:
      return v1::BAR_KIND_IO;
    case pci::BarKind::kMem32:
      return v1::BAR_KIND_MEM32;
    case pci::BarKind::kMem64:
      return v1::BAR_KIND_MEM64;
  }
  return v1::BAR_KIND_UNSPECIFIED;
}

// COM1's output to the console file (or stdout), flushed per line.
devices::SerialUart::Sink ConsoleSink(FILE* out) {
  if (out == nullptr) return nullptr;
  return [out](std::string_view bytes) {
    std::fwrite(bytes.data(), 1, bytes.size(), out);
    if (bytes.find('\n') != std::string_view::npos) std::fflush(out);
  };
}

}  // namespace

VmHost::VmHost(VmSpec spec, Options options, uint64_t start_ns)
    : spec_(std::move(spec)),
      options_(options),
      start_ns_(start_ns),
      events_(std::make_unique<EventHub>(start_ns)) {}

absl::StatusOr<std::unique_ptr<VmHost>> VmHost::Create(const VmSpec& spec, Options options) {
  std::unique_ptr<VmHost> h(new VmHost(spec, options, devices::MonotonicNowNs()));
  PCIVMM_RETURN_IF_ERROR(h->Build());
  return h;
}

absl::Status VmHost::Build() {
  platform::MachineConfig mc = spec_.machine;
  mc.console_echo = options_.echo_console ? stdout : nullptr;
  mc.profile = options_.profile;
  if (!spec_.console_path.empty()) {
    console_.reset(std::fopen(spec_.console_path.c_str(), "w"));
    if (!console_) return absl::ErrnoToStatus(errno, "console_path " + spec_.console_path);
    std::setvbuf(console_.get(), nullptr, _IOLBF, 0);
    mc.console_echo = console_.get();
  }
  const auto* linux_boot = std::get_if<platform::LinuxBootConfig>(&spec_.guest);
  mc.pc_platform = linux_boot != nullptr;
  PCIVMM_ASSIGN_OR_RETURN(machine_, platform::Machine::Create(mc));
  if (linux_boot != nullptr) {
    PCIVMM_ASSIGN_OR_RETURN(devices_,
                            platform::PcDevices::Attach(*machine_, {ConsoleSink(mc.console_echo)}));
  }
  if (spec_.test_devices) {
    PCIVMM_RETURN_IF_ERROR(devices::testing::AttachTestDevices(machine_->pio(), machine_->mmio()));
  }
  PCIVMM_ASSIGN_OR_RETURN(pci_, platform::PciPlatform::Attach(*machine_, spec_.pci));
  pci_->mapper().SetEventSink(events_.get());
  pci_->bus().SetTracer(events_.get());
  machine_->boot_marker().SetListener(
      [this](uint64_t boot_ns, int vcpu) { OnBootMarker(boot_ns, vcpu); });
  OpenKvmStats();
  stats_ = std::make_unique<StatsCollector>(
      StatsCollector::Sources{&machine_->stats(), &machine_->pio(), &machine_->mmio(), &pci_->bus(),
                              &pci_->mapper(), &kvm_stats_});
  if (const auto* t = std::get_if<TestGuestConfig>(&spec_.guest)) {
    PCIVMM_RETURN_IF_ERROR(machine_->LoadTestGuest(t->image_path, t->arg));
  } else {
    PCIVMM_RETURN_IF_ERROR(platform::LoadLinuxGuest(*machine_, *pci_, *linux_boot));
  }
  machine_->control().SetParkedListener([this] {
    if (!snapshot_pause_.load()) events_->PublishState(VmState::kPaused, 0);
  });
  if (options_.start_paused) machine_->control().RequestPause();
  if (options_.boot_timeout > absl::ZeroDuration()) {
    watchdog_ = std::make_unique<platform::BootWatchdog>(options_.boot_timeout,
                                                         [this] { OnBootTimeout(); });
  }
  return absl::OkStatus();
}

// Runs on the writing vCPU's thread: publish and request the pause, never wait.
void VmHost::OnBootMarker(uint64_t boot_ns, int vcpu) {
  if (watchdog_) watchdog_->Cancel();
  events_->PublishBootMarker(boot_ns, vcpu);
  if (options_.pause_on_boot_marker && !boot_paused_.exchange(true)) {
    machine_->control().RequestPause();
  }
}

void VmHost::OpenKvmStats() {
  auto vm = KvmStatsReader::Open(machine_->vm().fd());
  if (!vm.ok()) {
    kvm_stats_.unavailable = std::string(vm.status().message());
    return;
  }
  kvm_stats_.vm = std::move(*vm);
  for (int i = 0; i < machine_->vcpu_count(); ++i) {
    auto v = KvmStatsReader::Open(machine_->vcpu(i).fd());
    if (!v.ok()) {
      kvm_stats_.unavailable = std::string(v.status().message());
      return;
    }
    kvm_stats_.vcpus.push_back(std::move(*v));
  }
}

VmHost::~VmHost() {
  const bool running = run_thread_.joinable();
  if (running) machine_->RequestStop({kvm::kExitStatusVmmError, "the VMM is shutting down"});
  if (watchdog_) watchdog_->Stop();  // after the stop: a snapshot's wait ends at once
  if (running) run_thread_.join();
  events_->Close();
}

// Linux prints on the serial port; test guests (and a kernel before its UART driver) on the
// debug port.
std::string VmHost::ConsoleOutput() {
  if (devices_) {
    std::string serial = devices_->uart().output_tail();
    if (!platform::LastConsoleLine(serial).empty()) return serial;
  }
  return machine_->console().output();
}

// On the watchdog's thread.
void VmHost::OnBootTimeout() {
  absl::MutexLock lock(&control_mu_);
  if (machine_->boot_marker().boot_ns().has_value() || state() == VmState::kStopped) return;
  const bool paused_before = machine_->control().pause_requested();
  snapshot_pause_.store(!paused_before);
  const platform::BootTimeoutReport report = platform::CollectBootTimeoutReport(
      *machine_, options_.boot_timeout, ConsoleOutput(), kSnapshotTimeout);
  if (machine_->boot_marker().boot_ns().has_value()) {  // it came while the vCPUs parked
    EndSnapshotPause(paused_before);
    return;
  }
  events_->PublishBootTimeout(report);
  std::fflush(stdout);  // the console echo, if it goes there
  std::fputs(platform::FormatBootTimeoutReport(report, "pcivmm: ").c_str(), stderr);
  if (options_.stop_on_boot_timeout) {
    machine_->RequestStop(
        {kvm::kExitStatusBootTimeout, platform::BootTimeoutHeadline(options_.boot_timeout)});
    return;
  }
  std::fputs("pcivmm: the VM keeps running (event EVENT_KIND_BOOT_TIMEOUT published)\n", stderr);
  EndSnapshotPause(paused_before);
}

void VmHost::EndSnapshotPause(bool paused_before) {
  snapshot_pause_.store(false);
  if (paused_before) return;  // the API's pause goes on
  if (boot_paused_.load()) {  // --pause-on-boot-marker asked for a pause meanwhile
    if (machine_->control().paused()) events_->PublishState(VmState::kPaused, 0);
    return;
  }
  machine_->control().Resume();
}

void VmHost::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  if (!options_.start_paused) events_->PublishState(VmState::kRunning, 0);
  if (watchdog_ && !options_.start_paused) watchdog_->Arm();
  run_thread_ = std::thread([this] {
    kvm::StopReason reason = machine_->Run();
    OnStopped(devices_ ? devices_->ExplainStop(std::move(reason)) : reason);
  });
}

void VmHost::OnStopped(const kvm::StopReason& reason) {
  if (watchdog_) watchdog_->Cancel();
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    stop_reason_ = reason;
    events_->PublishState(VmState::kStopped, reason.exit_code);
  }
  if (options_.on_stopped) options_.on_stopped();
}

kvm::StopReason VmHost::Wait() {
  if (run_thread_.joinable()) run_thread_.join();
  absl::MutexLock lock(&mu_);
  return stop_reason_;
}

VmState VmHost::state() const {
  absl::MutexLock lock(&mu_);
  if (stopped_) return VmState::kStopped;
  if (!started_) return VmState::kCreated;
  return machine_->control().paused() ? VmState::kPaused : VmState::kRunning;
}

absl::Status VmHost::RequireNotStopped(const char* what) const {
  if (state() != VmState::kStopped) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("%s: the VM has stopped (state STOPPED)", what));
}

absl::Status VmHost::Pause() {
  absl::MutexLock control(&control_mu_);
  const VmState s = state();
  if (s != VmState::kRunning) {
    return absl::FailedPreconditionError(
        absl::StrFormat("state: the VM is %s; pause needs RUNNING", VmStateName(s)));
  }
  machine_->control().RequestPause();
  if (machine_->control().WaitParked(kPauseTimeout)) return absl::OkStatus();
  if (state() == VmState::kStopped) {
    return absl::FailedPreconditionError("state: the VM stopped while pausing");
  }
  return absl::DeadlineExceededError("the vCPUs did not park within 30 s");
}

absl::Status VmHost::Resume() {
  absl::MutexLock control(&control_mu_);
  const VmState s = state();
  if (s != VmState::kPaused) {
    return absl::FailedPreconditionError(
        absl::StrFormat("state: the VM is %s; resume needs PAUSED", VmStateName(s)));
  }
  machine_->control().Resume();
  events_->PublishState(VmState::kRunning, 0);
  if (watchdog_) watchdog_->Arm();  // started paused: the boot timeout counts from here
  return absl::OkStatus();
}

absl::Status VmHost::Shutdown() {
  machine_->RequestStop({0, "shut down through the API"});
  return absl::OkStatus();
}

bool VmHost::HasFunction(pci::Bdf bdf) const { return pci_->bus().Find(bdf) != nullptr; }

uint32_t VmHost::ReadConfig(pci::Bdf bdf, uint16_t offset, uint8_t width) {
  return pci_->bus().Read(pci::ConfigPath::kHost, bdf, offset, width, mmio::kHostAccess);
}

absl::Status VmHost::WriteConfig(pci::Bdf bdf, uint16_t offset, uint8_t width, uint32_t value) {
  PCIVMM_RETURN_IF_ERROR(RequireNotStopped("WriteConfig"));
  pci_->bus().Write(pci::ConfigPath::kHost, bdf, offset, width, value, mmio::kHostAccess);
  return absl::OkStatus();
}

v1::GetVmInfoResponse VmHost::Info() const {
  v1::GetVmInfoResponse r;
  *r.mutable_config() = ConfigFromSpec(spec_);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      r.set_exit_code(stop_reason_.exit_code);
      r.set_stop_detail(stop_reason_.detail);
    }
  }
  if (auto ns = machine_->boot_marker().boot_ns()) r.set_boot_ns(*ns);
  r.set_uptime_ns(devices::MonotonicNowNs() - start_ns_);
  r.set_pid(static_cast<uint32_t>(::getpid()));
  r.set_vcpus(static_cast<uint32_t>(machine_->vcpu_count()));
  r.set_ram_bytes(machine_->memory().size());
  r.mutable_config_mode()->set_pio_enabled(pci_->pio().enabled());
  r.mutable_config_mode()->set_ecam_fast_path(pci_->fast_path().enabled());
  r.set_bar_policy(ToProto(pci_->mapper().policy()));
  r.set_bar_cost_ns_per_gib(pci_->mapper().cost_model().ns_per_gib);
  DescribeMemory(r.mutable_memory());
  ToProto(machine_->profile(), r.mutable_boot_profile());
  v1::EcamFastPathInfo* fast = r.mutable_ecam_fast_path();
  fast->set_enabled(pci_->fast_path().enabled());
  fast->set_slots(fast->enabled() ? static_cast<uint32_t>(pci_->fast_path().slot_ranges().size())
                                  : 0);
  fast->set_shadow_bytes(pci_->fast_path().shadow_bytes());
  uint32_t trapping = 0;
  for (const pci::PciFunction* f : pci_->bus().functions())
    trapping += f->spec().ecam_fast_path ? 0 : 1;
  fast->set_trapping_functions(trapping);
  const kvm::KvmClass& kvm = machine_->kvm().kind();
  r.mutable_kvm()->set_flavour(std::string(kvm::FlavourName(kvm.flavour)));
  r.mutable_kvm()->set_reason(kvm.reason);
  r.mutable_kvm()->set_where(std::string(kvm::KvmWhere()));
  return r;
}

// The VMM's cost beyond guest RAM: VmRSS counts the guest RAM pages that are resident
// (anonymous memory of this process, in RssAnon), so the difference is what pcivmm itself
// uses.
void VmHost::DescribeMemory(v1::HostMemory* m) const {
  const ProcessRss rss = ProcessRssBytes().value_or(ProcessRss{});
  m->set_rss_bytes(rss.total);
  m->set_rss_anon_bytes(rss.anon);
  m->set_rss_file_bytes(rss.file);
  m->set_rss_shmem_bytes(rss.shmem);
  m->set_guest_ram_resident_bytes(GuestRamResidentBytes(machine_->memory()));
  m->set_overhead_bytes(m->rss_bytes() > m->guest_ram_resident_bytes()
                            ? m->rss_bytes() - m->guest_ram_resident_bytes()
                            : 0);
  m->set_ecam_shadow_bytes(pci_->fast_path().shadow_bytes());
}

void VmHost::DescribeFunction(const pci::PciFunction& f, v1::PciFunctionInfo* o) const {
  const pci::DeviceSpec& s = f.spec();
  *o->mutable_bdf() = ToProto(f.address());
  o->set_name(s.name);
  o->set_vendor_id(s.vendor_id);
  o->set_device_id(s.device_id);
  o->set_class_code(s.class_code);
  o->set_command(f.Read(pci::cfg::kCommand, 2));
  for (const pci::BarSpec& b : s.bars) {
    v1::BarInfo* bar = o->add_bars();
    bar->set_index(static_cast<uint32_t>(b.index));
    bar->set_kind(KindOf(b.kind));
    bar->set_prefetchable(b.prefetchable);
    bar->set_size(b.size);
    bar->set_address(f.BarAddress(b));
    if (auto at = pci_->mapper().MappedAt(f, b.index)) bar->set_mapped_gpa(*at);
  }
  o->set_rom_size(s.rom_size);
  o->set_rom_address(s.rom_size != 0 ? f.RomAddress() : 0);
  o->set_ecam_fast_path(s.ecam_fast_path);
  o->set_passthrough(s.passthrough);
}

v1::ListDevicesResponse VmHost::Devices() const {
  v1::ListDevicesResponse r;
  r.set_ecam_buses(static_cast<uint32_t>(spec_.pci.bus_count));
  for (const pci::PciFunction* f : pci_->bus().functions()) DescribeFunction(*f, r.add_functions());
  return r;
}

v1::GetStatsResponse VmHost::Stats(const StatsQuery& query) const {
  v1::GetStatsResponse r;
  stats_->CollectExits(r.mutable_exits());
  stats_->CollectConfig(query.config_registers, query.bdf, r.mutable_config());
  if (query.kvm) stats_->CollectKvm(r.mutable_kvm());
  r.set_state(ToProto(state()));
  r.set_time_ns(devices::MonotonicNowNs() - start_ns_);
  return r;
}

void VmHost::ResetStats(uint32_t scopes) { stats_->Reset(scopes); }

v1::MappingStats VmHost::MappingStats(std::optional<pci::Bdf> bdf) const {
  v1::MappingStats m;
  stats_->CollectMapping(bdf, &m);
  return m;
}

absl::Status VmHost::SetBarPolicy(std::optional<pci::MapPolicy> policy,
                                  std::optional<uint64_t> cost_ns_per_gib) {
  PCIVMM_RETURN_IF_ERROR(RequireNotStopped("SetBarPolicy"));
  if (cost_ns_per_gib) pci_->mapper().SetCostModel({*cost_ns_per_gib, /*sleep=*/true});
  if (policy) pci_->mapper().SetPolicy(*policy);
  return absl::OkStatus();
}

absl::Status VmHost::SetConfigMode(std::optional<bool> pio_enabled,
                                   std::optional<bool> ecam_fast_path) {
  PCIVMM_RETURN_IF_ERROR(RequireNotStopped("SetConfigMode"));
  if (ecam_fast_path) {
    PCIVMM_RETURN_IF_ERROR(*ecam_fast_path ? pci_->fast_path().Enable()
                                           : pci_->fast_path().Disable());
  }
  if (pio_enabled) pci_->pio().set_enabled(*pio_enabled);
  return absl::OkStatus();
}

}  // namespace pcivmm::api
