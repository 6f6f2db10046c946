// Benchmark bar-mapping: the Hyper-V seed's scenario (14 GPU-like devices with 128 GiB BARs,
// memory decode on at hand-off, a Linux-style probe that toggles decode around every BAR)
// under eager and deferred, each with and without a 1.8 s per 128 GiB cost model; then the
// mapper's cost per slot operation against a raw KVM_SET_USER_MEMORY_REGION loop over the
// same BARs. The cost model is accounted, not slept, here: slept, eager would add ~4 minutes.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "tests/bench/bench_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

ABSL_FLAG(std::string, guest_dir, "", "directory holding pci_enum.bin");
ABSL_FLAG(std::string, json, "", "where to write the JSON result");
ABSL_FLAG(int, devices, 14, "GPU-like devices");
ABSL_FLAG(uint64_t, bar_gib, 128, "BAR1 size in GiB");
ABSL_FLAG(int, toggles, 50, "decode off/on pairs per round of the overhead comparison");
ABSL_FLAG(int, rounds, 5, "alternating rounds of the overhead comparison");

namespace pcivmm {
namespace {

constexpr uint64_t kSeedNsPer128GiB = 1'800'000'000;  // the Hyper-V seed: 1.8 s per map

struct Scenario {
  uint64_t maps = 0, unmaps = 0, moves = 0, ioctl_ns = 0, modelled_ns = 0;
  double guest_ns = 0;
};

absl::StatusOr<std::unique_ptr<platform::Machine>> NewMachine() {
  platform::MachineConfig mc;
  mc.console_echo = nullptr;
  return platform::Machine::Create(mc);
}

platform::PciConfig Gpus(pci::MapPolicy policy, pci::CostModel cost) {
  platform::PciConfig pc;
  pc.bar_policy = policy;
  pc.bar_cost = cost;
  for (int i = 0; i < absl::GetFlag(FLAGS_devices); ++i) {
    pc.devices.push_back(
        pci::GpuLikeDevice(absl::StrFormat("gpu%d", i), i + 1, absl::GetFlag(FLAGS_bar_gib) << 30));
  }
  return pc;
}

// Counts only the probe: the hand-off maps happen before the guest runs.
absl::StatusOr<Scenario> RunScenario(pci::MapPolicy policy, pci::CostModel cost) {
  PCIVMM_ASSIGN_OR_RETURN(auto m, NewMachine());
  PCIVMM_ASSIGN_OR_RETURN(auto pci, platform::PciPlatform::Attach(*m, Gpus(policy, cost)));
  const pci::BarMapStats before = pci->mapper().Total();
  PCIVMM_RETURN_IF_ERROR(m->LoadTestGuest(absl::GetFlag(FLAGS_guest_dir) + "/pci_enum.bin", 1 | 2));
  const auto t0 = std::chrono::steady_clock::now();
  kvm::StopReason r = m->Run();
  Scenario s;
  s.guest_ns = bench::NsSince(t0);
  if (r.exit_code != 0) return absl::InternalError(r.detail);
  const pci::BarMapStats after = pci->mapper().Total();
  s.maps = after.maps - before.maps;
  s.unmaps = after.unmaps - before.unmaps;
  s.moves = after.moves - before.moves;
  s.ioctl_ns = after.ioctl.sum_ns - before.ioctl.sum_ns;
  s.modelled_ns = after.modelled_ns - before.modelled_ns;
  return s;
}

// Per slot operation: decode toggles through the mapper (config write, reconcile, memslot
// table, ioctl) on one GPU, and the same installs/deletes as bare ioctls.
absl::StatusOr<std::pair<double, double>> OverheadRound(int toggles) {
  PCIVMM_ASSIGN_OR_RETURN(auto m, NewMachine());
  platform::PciConfig pc = Gpus(pci::MapPolicy::kEager, {});
  pc.devices.resize(1);
  PCIVMM_ASSIGN_OR_RETURN(auto pci, platform::PciPlatform::Attach(*m, pc));
  pci::PciFunction& f = *pci->bus().Find({0, 1, 0});
  const uint64_t ops = 6ull * static_cast<uint64_t>(toggles);  // 3 unmaps + 3 maps per pair
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < toggles; ++i) {
    f.Write(pci::cfg::kCommand, 2, 0);
    f.Write(pci::cfg::kCommand, 2, pci::cfg::kCommandMemory);
  }
  const double mapper = bench::NsSince(t0) / static_cast<double>(ops);
  // Raw: the same three BARs at the same addresses, slot ids above the mapper's.
  struct Raw {
    uint64_t gpa, size;
    void* host;
  };
  std::vector<Raw> bars;
  for (const pci::BarSpec& b : f.spec().bars) {
    PCIVMM_ASSIGN_OR_RETURN(auto backing, pci->mapper().Backing(f, b.index));
    bars.push_back({*pci->mapper().MappedAt(f, b.index), b.size, backing.data()});
  }
  f.Write(pci::cfg::kCommand, 2, 0);  // the mapper lets go of the ranges
  t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < toggles; ++i) {
    for (int del = 0; del < 2; ++del) {
      for (size_t k = 0; k < bars.size(); ++k) {
        kvm_userspace_memory_region r{static_cast<uint32_t>(1000 + k), 0, bars[k].gpa,
                                      del ? 0 : bars[k].size,
                                      reinterpret_cast<uint64_t>(bars[k].host)};
        if (::ioctl(m->vm().fd(), KVM_SET_USER_MEMORY_REGION, &r) < 0) {
          return absl::ErrnoToStatus(errno, "raw KVM_SET_USER_MEMORY_REGION");
        }
      }
    }
  }
  const double raw = bench::NsSince(t0) / static_cast<double>(ops);
  return std::make_pair(mapper, raw);
}

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "bar-mapping: %s\n", st.ToString().c_str());
  return 1;
}

int Main() {
  const uint64_t bar_bytes = absl::GetFlag(FLAGS_bar_gib) << 30;
  const pci::CostModel seed{kSeedNsPer128GiB / 128, /*sleep=*/false};
  std::map<std::string, Scenario> runs;
  for (pci::MapPolicy p : {pci::MapPolicy::kEager, pci::MapPolicy::kDeferred}) {
    for (bool with_cost : {false, true}) {
      auto s = RunScenario(p, with_cost ? seed : pci::CostModel{});
      if (!s.ok()) return Fail(s.status());
      runs[absl::StrFormat("%s%s", pci::MapPolicyName(p), with_cost ? "+cost" : "")] = *s;
    }
  }
  std::vector<double> mapper, raw;
  for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
    auto r = OverheadRound(absl::GetFlag(FLAGS_toggles));
    if (!r.ok()) return Fail(r.status());
    mapper.push_back(r->first);
    raw.push_back(r->second);
  }
  const double mapper_ns = bench::Median(mapper), raw_ns = bench::Median(raw);
  absl::PrintF("bar-mapping: %d devices, BAR1 %d GiB, Linux-style probe through ECAM\n",
               absl::GetFlag(FLAGS_devices), bar_bytes >> 30);
  absl::PrintF("  %-15s %6s %6s %6s %14s %16s %14s\n", "policy", "maps", "unmaps", "moves",
               "ioctl ms", "modelled s", "guest ms");
  for (const auto& [name, s] : runs) {
    absl::PrintF("  %-15s %6d %6d %6d %14.1f %16.1f %14.1f\n", name, s.maps, s.unmaps, s.moves,
                 static_cast<double>(s.ioctl_ns) / 1e6, static_cast<double>(s.modelled_ns) / 1e9,
                 s.guest_ns / 1e6);
  }
  absl::PrintF("  per slot op: mapper %.0f ns, raw ioctl %.0f ns, ratio %.3f\n", mapper_ns, raw_ns,
               mapper_ns / raw_ns);
  auto policy_json = [&](const std::string& p) {
    const Scenario& a = runs[p];
    const Scenario& c = runs[p + "+cost"];
    return absl::StrFormat(
        "{\"map_ops\": %d, \"unmap_ops\": %d, \"move_ops\": %d, \"ioctl_ns_total\": %d, "
        "\"modelled_ns\": %d, \"guest_ns\": %.0f, \"guest_ns_with_cost_model\": %.0f}",
        a.maps, a.unmaps, a.moves, a.ioctl_ns, c.modelled_ns, a.guest_ns, c.guest_ns);
  };
  bench::EmitJson(absl::GetFlag(FLAGS_json),
                  absl::StrFormat("{\"devices\": %d, \"bar_bytes\": %d, \"policies\": {\"eager\": "
                                  "%s, \"deferred\": %s}, \"raw_ioctl_ns_per_op\": %.0f, "
                                  "\"mapper_ns_per_op\": %.0f, \"mapper_over_raw\": %.3f}\n",
                                  absl::GetFlag(FLAGS_devices), bar_bytes, policy_json("eager"),
                                  policy_json("deferred"), raw_ns, mapper_ns, mapper_ns / raw_ns));
  return 0;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
