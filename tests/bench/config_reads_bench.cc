// Benchmark config-reads: 100,000 dword config reads of a present function through PIO, the
// trapping ECAM window and the ECAM fast path, and a full enumeration of two GPU-like
// devices through each, all in one process (one lab boot). Per-read time is
// (T(N reads) - T(1 read)) / (N - 1), so VM setup and console output cancel out.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "tests/bench/bench_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

ABSL_FLAG(std::string, guest_dir, "", "directory holding cfg_storm.bin and pci_enum.bin");
ABSL_FLAG(std::string, json, "", "where to write the JSON result");
ABSL_FLAG(uint64_t, reads, 100000, "config reads per storm");

namespace pcivmm {
namespace {

struct Mode {
  const char* name;
  bool ecam;
  bool fast;
};
constexpr Mode kModes[] = {
    {"pio", false, false}, {"ecam_trap", true, false}, {"ecam_fast", true, true}};

struct Result {
  uint64_t exits;
  double ns;
};

absl::StatusOr<Result> RunGuest(const Mode& mode, const std::string& image, uint64_t arg) {
  platform::MachineConfig mc;
  mc.console_echo = nullptr;
  PCIVMM_ASSIGN_OR_RETURN(auto m, platform::Machine::Create(mc));
  platform::PciConfig pc;
  pc.ecam_fast_path = mode.fast;
  pc.bar_policy = pci::MapPolicy::kDeferred;  // the scan measures config access, not BAR remapping
  pc.devices = {pci::GpuLikeDevice("gpu0", 1), pci::GpuLikeDevice("gpu1", 2)};
  PCIVMM_ASSIGN_OR_RETURN(auto pci, platform::PciPlatform::Attach(*m, pc));
  PCIVMM_RETURN_IF_ERROR(m->LoadTestGuest(image, arg));
  const auto t0 = std::chrono::steady_clock::now();
  kvm::StopReason r = m->Run();
  const double ns = bench::NsSince(t0);
  if (r.exit_code != 0) return absl::InternalError(absl::StrFormat("%s: %s", mode.name, r.detail));
  return Result{platform::ConfigExitCount(m->stats(), *pci), ns};
}

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_guest_dir);
  const uint64_t n = absl::GetFlag(FLAGS_reads);
  std::map<std::string, Result> storm, scan;
  std::map<std::string, double> per_read;
  for (const Mode& mode : kModes) {
    const uint64_t path = mode.ecam ? 1ull << 32 : 0;
    auto big = RunGuest(mode, dir + "/cfg_storm.bin", path | n);
    auto one = RunGuest(mode, dir + "/cfg_storm.bin", path | 1);
    auto walk = RunGuest(mode, dir + "/pci_enum.bin", (mode.ecam ? 1 : 0) | 2 /*quiet*/);
    for (const auto* r : {&big, &one, &walk}) {
      if (!r->ok()) {
        std::fprintf(stderr, "config-reads: %s\n", r->status().ToString().c_str());
        return 1;
      }
    }
    storm[mode.name] = *big;
    per_read[mode.name] = (big->ns - one->ns) / static_cast<double>(n - 1);
    scan[mode.name] = *walk;
  }
  absl::PrintF("config-reads: %d dword reads of 00:01.0 per path; scan = enumerate 2 GPUs\n", n);
  absl::PrintF("  %-10s %12s %14s %12s %14s\n", "path", "storm exits", "ns/read", "scan exits",
               "scan ns");
  std::string paths, scans;
  for (const Mode& mode : kModes) {
    const std::string k = mode.name;
    absl::PrintF("  %-10s %12d %14.0f %12d %14.0f\n", k, storm[k].exits, per_read[k], scan[k].exits,
                 scan[k].ns);
    absl::StrAppendFormat(&paths, "%s\"%s\": {\"exits\": %d, \"ns_per_read\": %.1f}",
                          paths.empty() ? "" : ", ", k, storm[k].exits, per_read[k]);
    absl::StrAppendFormat(&scans, "%s\"%s\": {\"exits\": %d, \"ns\": %.0f}",
                          scans.empty() ? "" : ", ", k, scan[k].exits, scan[k].ns);
  }
  const double pio_fast = per_read["pio"] / per_read["ecam_fast"];
  const double trap_fast = per_read["ecam_trap"] / per_read["ecam_fast"];
  absl::PrintF("  ratio pio/fast %.1fx, trap/fast %.1fx (per read)\n", pio_fast, trap_fast);
  bench::EmitJson(absl::GetFlag(FLAGS_json),
                  absl::StrFormat("{\"reads\": %d, \"paths\": {%s}, \"scan\": {%s}, "
                                  "\"ratio_pio_fast\": %.2f, \"ratio_trap_fast\": %.2f}\n",
                                  n, paths, scans, pio_fast, trap_fast));
  return 0;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
