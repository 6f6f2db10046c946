// The daemon's VM: a Machine with its PCI platform, boot marker, event hub and statistics,
// run on its own thread and controlled through the VmBackend interface.
#ifndef PCIVMM_API_VM_HOST_H_
#define PCIVMM_API_VM_HOST_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/event_hub.h"
#include "api/stats_collector.h"
#include "api/vm_backend.h"
#include "api/vm_spec.h"
#include "vmm/devices/boot_marker.h"
#include "vmm/platform/boot_watchdog.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pc_devices.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm::api {

// Threads: Start() runs the vCPUs on one thread (Machine::Run); every other method may be
// called from any thread (the gRPC handlers). Life-cycle calls are serialised by mu_. With
// Options::boot_timeout, the boot watchdog has a thread of its own (OnBootTimeout).
class VmHost : public VmBackend {
 public:
  struct Options {
    bool start_paused = false;          // vCPUs park before their first KVM_RUN
    bool pause_on_boot_marker = false;  // park every vCPU right after the first marker write
    bool echo_console = true;           // with no console_path: echo to stdout
    std::function<void()> on_stopped;   // called on the run thread once the VM stopped
    // No boot marker this long after the vCPUs first ran (zero: no watchdog): the report
    // (vmm/platform/boot_watchdog.h) goes to stderr and to the event feed, then the VM stops with
    // kExitStatusBootTimeout, or, if !stop_on_boot_timeout (the daemon), runs on.
    absl::Duration boot_timeout = absl::ZeroDuration();
    bool stop_on_boot_timeout = true;
    // The process's boot profile (the daemon marks its own phases in it); nullptr: the
    // machine's own.
    std::shared_ptr<base::BootProfile> profile;
  };

  static absl::StatusOr<std::unique_ptr<VmHost>> Create(const VmSpec& spec, Options options);
  ~VmHost() override;  // stops the VM if it runs, joins, closes the event feed

  void Start();
  // Blocks until the VM stopped; returns why. Start() must have been called.
  kvm::StopReason Wait();

  platform::Machine& machine() { return *machine_; }
  platform::PciPlatform& pci() { return *pci_; }
  const devices::BootMarker& boot_marker() const { return machine_->boot_marker(); }
  const VmSpec& spec() const { return spec_; }

  // VmBackend.
  VmState state() const override;
  v1::GetVmInfoResponse Info() const override;
  int bus_count() const override { return spec_.pci.bus_count; }
  bool HasFunction(pci::Bdf bdf) const override;
  absl::Status Pause() override;
  absl::Status Resume() override;
  absl::Status Shutdown() override;
  v1::ListDevicesResponse Devices() const override;
  uint32_t ReadConfig(pci::Bdf bdf, uint16_t offset, uint8_t width) override;
  absl::Status WriteConfig(pci::Bdf bdf, uint16_t offset, uint8_t width, uint32_t value) override;
  v1::GetStatsResponse Stats(const StatsQuery& query) const override;
  void ResetStats(uint32_t scopes) override;
  v1::MappingStats MappingStats(std::optional<pci::Bdf> bdf) const override;
  absl::Status SetBarPolicy(std::optional<pci::MapPolicy> policy,
                            std::optional<uint64_t> cost_ns_per_gib) override;
  absl::Status SetConfigMode(std::optional<bool> pio_enabled,
                             std::optional<bool> ecam_fast_path) override;
  EventHub& events() override { return *events_; }

 private:
  VmHost(VmSpec spec, Options options, uint64_t start_ns);
  absl::Status Build();
  void OpenKvmStats();
  void OnBootMarker(uint64_t boot_ns, int vcpu);
  void OnStopped(const kvm::StopReason& reason);
  void OnBootTimeout();
  void EndSnapshotPause(bool paused_before);
  std::string ConsoleOutput();
  absl::Status RequireNotStopped(const char* what) const;
  void DescribeFunction(const pci::PciFunction& f, v1::PciFunctionInfo* out) const;
  void DescribeMemory(v1::HostMemory* out) const;

  const VmSpec spec_;
  const Options options_;
  const uint64_t start_ns_;
  // Destruction runs bottom-up: the PCI platform before the machine whose memslots it
  // uses, both before the hub and the console they report to.
  std::unique_ptr<EventHub> events_;
  std::unique_ptr<FILE, int (*)(FILE*)> console_{nullptr, &std::fclose};
  std::unique_ptr<platform::Machine> machine_;
  std::unique_ptr<platform::PcDevices> devices_;  // Linux guests: UART, RTC, ACPI PM, i8042
  std::unique_ptr<platform::PciPlatform> pci_;
  KvmStatsFiles kvm_stats_;
  std::unique_ptr<StatsCollector> stats_;

  // Pause, Resume and the boot watchdog's snapshot (the vCPUs parked to read them), so that
  // neither undoes the other's pause. Taken before mu_.
  absl::Mutex control_mu_;
  mutable absl::Mutex mu_;  // life cycle: Start, Pause, Resume, Shutdown, the stop
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  kvm::StopReason stop_reason_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> boot_paused_{false};
  std::atomic<bool> snapshot_pause_{false};           // the watchdog's pause: no PAUSED event
  std::unique_ptr<platform::BootWatchdog> watchdog_;  // with Options::boot_timeout
  std::thread run_thread_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_VM_HOST_H_
