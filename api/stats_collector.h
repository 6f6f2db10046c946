// Reads a VM's counters (exits, config accesses, KVM's own, BAR mapping) into pcivmm.v1
// messages, relative to baselines that Reset() moves.
#ifndef PCIVMM_API_STATS_COLLECTOR_H_
#define PCIVMM_API_STATS_COLLECTOR_H_

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "api/kvm_stats.h"
#include "mmio/bus.h"
#include "pci/bar_mapper.h"
#include "pci/pci_bus.h"
#include "pcivmm/v1/stats.pb.h"
#include "vmm/kvm/exit_stats.h"

namespace pcivmm::api {

// KVM's stats files for the VM and each vCPU, or why there are none.
struct KvmStatsFiles {
  std::unique_ptr<KvmStatsReader> vm;
  std::vector<std::unique_ptr<KvmStatsReader>> vcpus;
  std::string unavailable;  // non-empty: no stats (the reason)
};

// Counters only grow; a reset records their values as a baseline and later reads subtract
// it, so no counter a vCPU owns is ever written by another thread. (The mapper's stats live
// under its lock and are zeroed there.) Reads and resets are exact while the VM is paused;
// while it runs each counter is read at a slightly different moment.
class StatsCollector {
 public:
  struct Sources {
    const kvm::ExitStats* exits = nullptr;
    const mmio::Bus* pio = nullptr;
    const mmio::Bus* mmio = nullptr;
    const pci::PciBus* pci = nullptr;    // optional
    pci::BarMapper* mapper = nullptr;    // optional
    const KvmStatsFiles* kvm = nullptr;  // optional
  };
  explicit StatsCollector(Sources sources) : src_(sources) {}

  void CollectExits(v1::ExitStats* out) const;
  // Per function: present functions, or only `only`; per register when `registers`.
  void CollectConfig(bool registers, std::optional<pci::Bdf> only, v1::ConfigStats* out) const;
  void CollectKvm(v1::KvmStats* out) const;
  // Per memory BAR of every function, or of `only`.
  void CollectMapping(std::optional<pci::Bdf> only, v1::MappingStats* out) const;
  // `scopes`: StatsScopeBit mask (vm_backend.h).
  void Reset(uint32_t scopes);

 private:
  struct ExitBaseline {
    std::vector<std::array<uint64_t, kvm::VcpuExitStats::kMaxExitReason>> reasons;  // per vCPU
    absl::flat_hash_map<uint32_t, uint64_t> ports;  // port * 2 + direction
    std::vector<uint64_t> mmio;                     // (region + 1) * 2 + direction
  };
  struct ConfigBaseline {
    std::array<uint64_t, size_t{pci::kConfigPathCount} * 2> by_path{};
    std::array<uint64_t, pci::kConfigPathCount> malformed{};
    std::array<uint64_t, pci::ConfigStats::kFunctions * size_t{pci::kConfigPathCount} * 2>
        functions{};
    absl::flat_hash_map<uint64_t, uint64_t> registers;  // RegisterKey()
  };
  using KvmBaseline = std::map<std::string, uint64_t>;  // "vm/name", "vcpu3/name"

  static uint64_t RegisterKey(pci::ConfigPath p, mmio::Direction d, uint32_t index, uint16_t dword);
  uint64_t Reason(int vcpu, uint32_t reason) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t Port(uint16_t port, mmio::Direction d) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t Mmio(int region, mmio::Direction d) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t Register(pci::ConfigPath p, mmio::Direction d, uint32_t index, uint16_t dword) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectVcpus(v1::ExitStats* out) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectFunction(pci::Bdf bdf, bool registers, v1::ConfigStats* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectRegisters(pci::Bdf bdf, uint32_t index, pci::ConfigPath p, v1::ConfigStats* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void CollectKvmFile(const KvmStatsReader& r, const std::string& prefix,
                      google::protobuf::RepeatedPtrField<v1::KvmStat>* out) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ResetExits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetConfig() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ResetKvm() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Sources src_;
  mutable absl::Mutex mu_;
  ExitBaseline exits_ ABSL_GUARDED_BY(mu_);
  ConfigBaseline config_ ABSL_GUARDED_BY(mu_);
  KvmBaseline kvm_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_STATS_COLLECTOR_H_
