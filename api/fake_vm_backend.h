// A VmBackend without KVM for the service's unit tests: a state machine, two functions with
// plain register files, counters that the test sets, and a real EventHub.
#ifndef PCIVMM_API_FAKE_VM_BACKEND_H_
#define PCIVMM_API_FAKE_VM_BACKEND_H_

#include <array>
#include <cstring>
#include <map>

#include "absl/synchronization/mutex.h"
#include "api/vm_backend.h"
#include "vmm/devices/boot_marker.h"

namespace pcivmm::api::testing {

class FakeVmBackend : public VmBackend {
 public:
  static constexpr pci::Bdf kHostBridge{0, 0, 0};
  static constexpr pci::Bdf kGpu{0, 1, 0};

  FakeVmBackend() : hub_(devices::MonotonicNowNs()) {
    for (pci::Bdf b : {kHostBridge, kGpu}) config_[b.devfn()].fill(0);
    const uint32_t id = 0x20B510DE;
    std::memcpy(config_[kGpu.devfn()].data(), &id, 4);
  }

  void set_state(VmState s) {
    absl::MutexLock lock(&mu_);
    state_ = s;
  }
  void set_exits(uint64_t n) {
    absl::MutexLock lock(&mu_);
    exits_ = n;
  }
  uint32_t reset_scopes() const {
    absl::MutexLock lock(&mu_);
    return reset_scopes_;
  }
  std::optional<StatsQuery> last_query() const {
    absl::MutexLock lock(&mu_);
    return last_query_;
  }
  int shutdowns() const {
    absl::MutexLock lock(&mu_);
    return shutdowns_;
  }

  VmState state() const override {
    absl::MutexLock lock(&mu_);
    return state_;
  }
  v1::GetVmInfoResponse Info() const override {
    absl::MutexLock lock(&mu_);
    v1::GetVmInfoResponse r;
    r.mutable_config()->mutable_machine()->set_vcpus(1);
    r.set_vcpus(1);
    r.set_pid(42);
    r.mutable_config_mode()->set_pio_enabled(pio_);
    r.mutable_config_mode()->set_ecam_fast_path(fast_);
    if (state_ == VmState::kStopped) r.set_stop_detail("fake stopped");
    return r;
  }
  int bus_count() const override { return 1; }
  bool HasFunction(pci::Bdf bdf) const override { return bdf == kHostBridge || bdf == kGpu; }

  absl::Status Pause() override { return Transition(VmState::kRunning, VmState::kPaused); }
  absl::Status Resume() override { return Transition(VmState::kPaused, VmState::kRunning); }
  absl::Status Shutdown() override {
    absl::MutexLock lock(&mu_);
    ++shutdowns_;
    state_ = VmState::kStopped;
    hub_.PublishState(state_, 0);
    return absl::OkStatus();
  }

  v1::ListDevicesResponse Devices() const override {
    v1::ListDevicesResponse r;
    r.set_ecam_buses(1);
    r.add_functions()->set_name("host-bridge");
    v1::PciFunctionInfo* gpu = r.add_functions();
    gpu->set_name("gpu0");
    gpu->mutable_bdf()->set_device(1);
    gpu->set_vendor_id(0x10DE);
    return r;
  }
  uint32_t ReadConfig(pci::Bdf bdf, uint16_t offset, uint8_t width) override {
    absl::MutexLock lock(&mu_);
    uint32_t v = 0;
    std::memcpy(&v, config_[bdf.devfn()].data() + offset, width);
    return v;
  }
  absl::Status WriteConfig(pci::Bdf bdf, uint16_t offset, uint8_t width, uint32_t value) override {
    absl::MutexLock lock(&mu_);
    if (state_ == VmState::kStopped) return absl::FailedPreconditionError("state: stopped");
    std::memcpy(config_[bdf.devfn()].data() + offset, &value, width);
    return absl::OkStatus();
  }

  v1::GetStatsResponse Stats(const StatsQuery& query) const override {
    absl::MutexLock lock(&mu_);
    last_query_ = query;
    v1::GetStatsResponse r;
    r.mutable_exits()->set_total(exits_);
    v1::ConfigPathCount* pio = r.mutable_config()->add_by_path();
    pio->set_path(v1::CONFIG_PATH_PIO);
    pio->set_reads(exits_ / 2);
    r.set_state(v1::VM_STATE_RUNNING);
    return r;
  }
  void ResetStats(uint32_t scopes) override {
    absl::MutexLock lock(&mu_);
    reset_scopes_ = scopes;
  }
  v1::MappingStats MappingStats(std::optional<pci::Bdf> /*bdf*/) const override {
    absl::MutexLock lock(&mu_);
    v1::MappingStats m;
    m.set_policy(policy_ == pci::MapPolicy::kEager ? v1::BAR_POLICY_EAGER
                                                   : v1::BAR_POLICY_DEFERRED);
    m.set_cost_ns_per_gib(cost_);
    v1::BarMappingStats* bar = m.add_bars();
    bar->set_device("gpu0");
    bar->set_bar(1);
    bar->set_maps(3);
    bar->mutable_ioctl()->set_count(3);
    v1::HistogramBucket* b = bar->mutable_ioctl()->add_buckets();
    b->set_lower_ns(1024);
    b->set_upper_ns(2048);
    b->set_count(3);
    return m;
  }
  absl::Status SetBarPolicy(std::optional<pci::MapPolicy> policy,
                            std::optional<uint64_t> cost) override {
    absl::MutexLock lock(&mu_);
    if (state_ == VmState::kStopped) return absl::FailedPreconditionError("state: stopped");
    if (policy) policy_ = *policy;
    if (cost) cost_ = *cost;
    return absl::OkStatus();
  }
  absl::Status SetConfigMode(std::optional<bool> pio, std::optional<bool> fast) override {
    absl::MutexLock lock(&mu_);
    if (state_ == VmState::kStopped) return absl::FailedPreconditionError("state: stopped");
    if (pio) pio_ = *pio;
    if (fast) fast_ = *fast;
    return absl::OkStatus();
  }
  EventHub& events() override { return hub_; }

 private:
  absl::Status Transition(VmState from, VmState to) {
    absl::MutexLock lock(&mu_);
    if (state_ != from) {
      return absl::FailedPreconditionError(std::string("state: the VM is ") + VmStateName(state_));
    }
    state_ = to;
    hub_.PublishState(to, 0);
    return absl::OkStatus();
  }

  EventHub hub_;
  mutable absl::Mutex mu_;
  VmState state_ ABSL_GUARDED_BY(mu_) = VmState::kRunning;
  uint64_t exits_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t reset_scopes_ ABSL_GUARDED_BY(mu_) = 0;
  mutable std::optional<StatsQuery> last_query_ ABSL_GUARDED_BY(mu_);
  int shutdowns_ ABSL_GUARDED_BY(mu_) = 0;
  pci::MapPolicy policy_ ABSL_GUARDED_BY(mu_) = pci::MapPolicy::kEager;
  uint64_t cost_ ABSL_GUARDED_BY(mu_) = 0;
  bool pio_ ABSL_GUARDED_BY(mu_) = true;
  bool fast_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint16_t, std::array<uint8_t, 4096>> config_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::api::testing

#endif  // PCIVMM_API_FAKE_VM_BACKEND_H_
