// Benchmark bar-mapping: the Hyper-V seed's scenario (14 GPU-like devices with 128 GiB BARs,
// memory decode on at hand-off) probed the two ways Linux sizes BARs: "per_bar" (before 6.14,
// decode off and on around every BAR and the ROM) and "batched" (6.14+, "PCI: Batch BAR sizing
// operations": one off/on pair per device), each under eager and deferred, with and without a
// 1.8 s per 128 GiB cost model; the duration of every memslot map and unmap of the eager per-BAR
// probe by BAR size; then the mapper's cost per slot operation against a raw
// KVM_SET_USER_MEMORY_REGION loop over the same BARs. The cost model is accounted, not slept,
// here: slept, eager per-BAR would add ~4 minutes.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tests/bench/bench_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/test_devices.h"
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
constexpr uint64_t kEcamQuiet = 1 | 2;                // pci_enum arg bits 0 and 1

struct Pattern {
  const char* name;
  uint64_t arg;  // pci_enum arg bit 2: batched sizing
};
constexpr Pattern kPatterns[] = {{"per_bar", 0}, {"batched", 4}};

struct Scenario {
  uint64_t maps = 0, unmaps = 0, moves = 0, ioctl_ns = 0, modelled_ns = 0;
  double guest_ns = 0;
};
// By "<pattern>/<policy>[+cost]", e.g. "batched/eager+cost".
using Runs = std::map<std::string, Scenario>;

// Every memslot map and unmap (an eviction counts as an unmap) the mapper reports, its duration
// by BAR size. Called under the mapper's lock, so one writer at a time; read after the run.
class LatencySink : public pci::MapEventSink {
 public:
  void OnMapEvent(const pci::MapEvent& event) override {
    Samples& s = by_size_[event.size];
    if (event.kind == pci::MapEventKind::kMap) s.map.push_back(event.ns);
    if (event.kind == pci::MapEventKind::kUnmap || event.kind == pci::MapEventKind::kEvict) {
      s.unmap.push_back(event.ns);
    }
  }
  // {"16MiB": {"map": [ns, ...], "unmap": [ns, ...]}, ...}, smallest BAR first.
  std::string Json() const {
    std::vector<std::string> sizes;
    for (const auto& [size, s] : by_size_) {
      sizes.push_back(absl::StrFormat(R"("%s": {"map": [%s], "unmap": [%s]})", SizeLabel(size),
                                      absl::StrJoin(s.map, ", "), absl::StrJoin(s.unmap, ", ")));
    }
    return "{" + absl::StrJoin(sizes, ", ") + "}";
  }
  void Print() const {
    for (const auto& [size, s] : by_size_) {
      absl::PrintF("  %-8s map n=%-4d median %8.0f ns   unmap n=%-4d median %8.0f ns\n",
                   SizeLabel(size), s.map.size(), MedianNs(s.map), s.unmap.size(),
                   MedianNs(s.unmap));
    }
  }

 private:
  struct Samples {
    std::vector<uint64_t> map, unmap;
  };
  static std::string SizeLabel(uint64_t bytes) {
    if (bytes % (1ull << 30) == 0) return absl::StrFormat("%dGiB", bytes >> 30);
    if (bytes % (1ull << 20) == 0) return absl::StrFormat("%dMiB", bytes >> 20);
    if (bytes % (1ull << 10) == 0) return absl::StrFormat("%dKiB", bytes >> 10);
    return absl::StrFormat("%dB", bytes);
  }
  static double MedianNs(const std::vector<uint64_t>& ns) {
    return bench::Median(std::vector<double>(ns.begin(), ns.end()));
  }
  std::map<uint64_t, Samples> by_size_;
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

// Fails if the guest did not size the way `pattern` asks (a stale pci_enum.bin ignores bit 2).
absl::Status CheckSizing(const platform::Machine& m, const Pattern& pattern) {
  const auto reports = devices::testing::ParseReports(m.console().output());
  const auto it = reports.find("sizing");
  const uint64_t want = pattern.arg != 0 ? 1 : 0;
  if (it != reports.end() && it->second == want) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("pci_enum.bin did not report sizing=%d for the %s pattern (stale image?)",
                      want, pattern.name));
}

// Counts only the probe: the hand-off maps happen before the guest runs, and `sink` (if set)
// hears only the probe's operations.
absl::StatusOr<Scenario> RunScenario(pci::MapPolicy policy, pci::CostModel cost,
                                     const Pattern& pattern, pci::MapEventSink* sink) {
  PCIVMM_ASSIGN_OR_RETURN(auto m, NewMachine());
  PCIVMM_ASSIGN_OR_RETURN(auto pci, platform::PciPlatform::Attach(*m, Gpus(policy, cost)));
  const pci::BarMapStats before = pci->mapper().Total();
  PCIVMM_RETURN_IF_ERROR(
      m->LoadTestGuest(absl::GetFlag(FLAGS_guest_dir) + "/pci_enum.bin", kEcamQuiet | pattern.arg));
  pci->mapper().SetEventSink(sink);
  const auto t0 = std::chrono::steady_clock::now();
  kvm::StopReason r = m->Run();
  Scenario s;
  s.guest_ns = bench::NsSince(t0);
  pci->mapper().SetEventSink(nullptr);  // not the teardown's unmaps
  if (r.exit_code != 0) return absl::InternalError(r.detail);
  PCIVMM_RETURN_IF_ERROR(CheckSizing(*m, pattern));
  const pci::BarMapStats after = pci->mapper().Total();
  s.maps = after.maps - before.maps;
  s.unmaps = after.unmaps - before.unmaps;
  s.moves = after.moves - before.moves;
  s.ioctl_ns = after.ioctl.sum_ns - before.ioctl.sum_ns;
  s.modelled_ns = after.modelled_ns - before.modelled_ns;
  return s;
}

// Both patterns under both policies, with and without the cost model; the eager per-BAR run
// without it feeds `latency`.
absl::StatusOr<Runs> RunAll(LatencySink& latency) {
  const pci::CostModel seed{kSeedNsPer128GiB / 128, /*sleep=*/false};
  Runs runs;
  for (const Pattern& pattern : kPatterns) {
    for (pci::MapPolicy p : {pci::MapPolicy::kEager, pci::MapPolicy::kDeferred}) {
      for (bool with_cost : {false, true}) {
        const bool sampled = pattern.arg == 0 && p == pci::MapPolicy::kEager && !with_cost;
        PCIVMM_ASSIGN_OR_RETURN(Scenario s, RunScenario(p, with_cost ? seed : pci::CostModel{},
                                                        pattern, sampled ? &latency : nullptr));
        runs[absl::StrFormat("%s/%s%s", pattern.name, pci::MapPolicyName(p),
                             with_cost ? "+cost" : "")] = s;
      }
    }
  }
  return runs;
}

// The point of deferred: an unmodified guest's sizing maps and unmaps nothing.
absl::Status CheckDeferred(const Runs& runs) {
  for (const auto& [name, s] : runs) {
    if (name.find("deferred") == std::string::npos || s.maps + s.unmaps == 0) continue;
    return absl::InternalError(absl::StrFormat(
        "%s made %d maps and %d unmaps during the probe (expected none)", name, s.maps, s.unmaps));
  }
  return absl::OkStatus();
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

void PrintRuns(const Runs& runs) {
  const double gpus = absl::GetFlag(FLAGS_devices);
  absl::PrintF("  %-23s %6s %6s %6s %10s %12s %10s %9s %11s %15s\n", "pattern/policy", "maps",
               "unmaps", "moves", "ioctl ms", "modelled s", "guest ms", "maps/gpu", "unmaps/gpu",
               "modelled s/gpu");
  for (const Pattern& pattern : kPatterns) {
    for (const char* policy : {"eager", "eager+cost", "deferred", "deferred+cost"}) {
      const std::string name = absl::StrFormat("%s/%s", pattern.name, policy);
      const Scenario& s = runs.at(name);
      const double modelled_s = static_cast<double>(s.modelled_ns) / 1e9;
      absl::PrintF("  %-23s %6d %6d %6d %10.1f %12.1f %10.1f %9.2f %11.2f %15.2f\n", name, s.maps,
                   s.unmaps, s.moves, static_cast<double>(s.ioctl_ns) / 1e6, modelled_s,
                   s.guest_ns / 1e6, static_cast<double>(s.maps) / gpus,
                   static_cast<double>(s.unmaps) / gpus, modelled_s / gpus);
    }
  }
}

// Today's "policies" entry: the per-BAR pattern's counts, the cost model's time and guest time.
std::string PolicyJson(const Runs& runs, const std::string& run) {
  const Scenario& a = runs.at(run);
  const Scenario& c = runs.at(run + "+cost");
  return absl::StrFormat(
      "\"map_ops\": %d, \"unmap_ops\": %d, \"move_ops\": %d, \"ioctl_ns_total\": %d, "
      "\"modelled_ns\": %d, \"guest_ns\": %.0f, \"guest_ns_with_cost_model\": %.0f",
      a.maps, a.unmaps, a.moves, a.ioctl_ns, c.modelled_ns, a.guest_ns, c.guest_ns);
}

// The same with the per-GPU figures.
std::string PatternPolicyJson(const Runs& runs, const std::string& run) {
  const double gpus = absl::GetFlag(FLAGS_devices);
  const Scenario& a = runs.at(run);
  const Scenario& c = runs.at(run + "+cost");
  return absl::StrFormat(
      R"({%s, "map_ops_per_gpu": %.3f, "unmap_ops_per_gpu": %.3f, "modelled_s_per_gpu": %.3f})",
      PolicyJson(runs, run), static_cast<double>(a.maps) / gpus,
      static_cast<double>(a.unmaps) / gpus, static_cast<double>(c.modelled_ns) / 1e9 / gpus);
}

std::string PatternsJson(const Runs& runs) {
  std::vector<std::string> patterns;
  for (const Pattern& p : kPatterns) {
    patterns.push_back(absl::StrFormat(R"("%s": {"eager": %s, "deferred": %s})", p.name,
                                       PatternPolicyJson(runs, absl::StrCat(p.name, "/eager")),
                                       PatternPolicyJson(runs, absl::StrCat(p.name, "/deferred"))));
  }
  return "{" + absl::StrJoin(patterns, ", ") + "}";
}

// Today's keys (the per-BAR pattern) first, then "patterns" and "latency_ns".
std::string ResultJson(const Runs& runs, const LatencySink& latency, double mapper_ns,
                       double raw_ns) {
  return absl::StrFormat(
      "{\"devices\": %d, \"bar_bytes\": %d, \"policies\": {\"eager\": {%s}, \"deferred\": "
      "{%s}}, \"raw_ioctl_ns_per_op\": %.0f, \"mapper_ns_per_op\": %.0f, \"mapper_over_raw\": "
      "%.3f, \"patterns\": %s, \"latency_ns\": %s}\n",
      absl::GetFlag(FLAGS_devices), absl::GetFlag(FLAGS_bar_gib) << 30,
      PolicyJson(runs, "per_bar/eager"), PolicyJson(runs, "per_bar/deferred"), raw_ns, mapper_ns,
      mapper_ns / raw_ns, PatternsJson(runs), latency.Json());
}

// The median per slot operation over the rounds: {mapper, raw ioctl}.
absl::StatusOr<std::pair<double, double>> MedianOverhead() {
  std::vector<double> mapper;
  std::vector<double> raw;
  for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
    PCIVMM_ASSIGN_OR_RETURN(auto r, OverheadRound(absl::GetFlag(FLAGS_toggles)));
    mapper.push_back(r.first);
    raw.push_back(r.second);
  }
  return std::make_pair(bench::Median(mapper), bench::Median(raw));
}

int Main() {
  LatencySink latency;
  absl::StatusOr<Runs> runs = RunAll(latency);
  if (!runs.ok()) return Fail(runs.status());
  absl::StatusOr<std::pair<double, double>> overhead = MedianOverhead();
  if (!overhead.ok()) return Fail(overhead.status());
  const auto [mapper_ns, raw_ns] = *overhead;
  absl::PrintF(
      "bar-mapping: %d devices, BAR1 %d GiB, Linux-style probe through ECAM, per BAR (before "
      "6.14) and batched (6.14+)\n",
      absl::GetFlag(FLAGS_devices), absl::GetFlag(FLAGS_bar_gib));
  PrintRuns(*runs);
  absl::PrintF("  memslot operations of the eager per-BAR probe, by BAR size:\n");
  latency.Print();
  absl::PrintF("  per slot op: mapper %.0f ns, raw ioctl %.0f ns, ratio %.3f\n", mapper_ns, raw_ns,
               mapper_ns / raw_ns);
  const absl::Status deferred = CheckDeferred(*runs);  // no JSON from a broken run
  if (!deferred.ok()) return Fail(deferred);
  bench::EmitJson(absl::GetFlag(FLAGS_json), ResultJson(*runs, latency, mapper_ns, raw_ns));
  return 0;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
