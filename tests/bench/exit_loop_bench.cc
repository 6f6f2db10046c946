// Benchmark exit-loop: the same PIO-storm guest under pcivmm's full exit path (dispatcher,
// bus, counters) and under a bare KVM_RUN loop that only checks the port. The ratio is the
// cost pcivmm adds per exit. Runs A and B alternately and reports medians.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "tests/bench/bench_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/test_devices.h"
#include "vmm/platform/machine.h"

ABSL_FLAG(std::string, guest_dir, "", "directory holding pio_storm.bin");
ABSL_FLAG(std::string, json, "", "where to write the JSON result");
ABSL_FLAG(uint64_t, exits, 20000, "port writes per run");
ABSL_FLAG(int, rounds, 7, "alternating rounds of each variant");

namespace pcivmm {
namespace {

// The storm's port: takes every write and does nothing, so the figure is pcivmm's exit path
// (dispatch, bus lookup, counters) and not a device's own work; the bare loop does none.
class SinkPort : public mmio::IoDevice {
 public:
  std::string_view Name() const override { return "sink"; }
  void Read(uint64_t, absl::Span<uint8_t> data, int) override {
    std::fill(data.begin(), data.end(), 0);
  }
  void Write(uint64_t, absl::Span<const uint8_t>, int) override {}
};

struct Sample {
  uint64_t exits;
  double ns;
};

absl::StatusOr<Sample> RunPcivmm(const std::string& image, uint64_t n) {
  platform::MachineConfig config;
  config.console_echo = nullptr;
  PCIVMM_ASSIGN_OR_RETURN(auto m, platform::Machine::Create(config));
  PCIVMM_RETURN_IF_ERROR(
      m->pio().Register(PCIVMM_TEST_PIO_PORT, 8, std::make_shared<SinkPort>()).status());
  PCIVMM_RETURN_IF_ERROR(m->LoadTestGuest(image, n));
  const auto t0 = std::chrono::steady_clock::now();
  kvm::StopReason r = m->Run();
  const double ns = bench::NsSince(t0);
  if (r.exit_code != 0) return absl::InternalError(r.detail);
  return Sample{m->stats().total_exits(), ns};
}

// The bare loop: same VM setup, then KVM_RUN with nothing but a port check per exit.
absl::StatusOr<Sample> RunBare(const std::string& image, uint64_t n) {
  platform::MachineConfig config;
  config.console_echo = nullptr;
  PCIVMM_ASSIGN_OR_RETURN(auto m, platform::Machine::Create(config));
  PCIVMM_RETURN_IF_ERROR(m->LoadTestGuest(image, n));
  const int fd = m->vcpu(0).fd();
  kvm_run* run = m->vcpu(0).run();
  absl::StatusOr<Sample> result;
  // On its own thread, as pcivmm's vCPUs are, so only the exit path differs.
  std::thread vcpu([&] {
    uint64_t exits = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      if (::ioctl(fd, KVM_RUN, 0) < 0) {
        result = absl::ErrnoToStatus(errno, "KVM_RUN");
        return;
      }
      ++exits;
      if (run->exit_reason != KVM_EXIT_IO) {
        result = absl::InternalError("unexpected exit");
        return;
      }
      if (run->io.port == PCIVMM_EXIT_PORT) break;
    }
    result = Sample{exits, bench::NsSince(t0)};
  });
  vcpu.join();
  return result;
}

int Main() {
  const std::string image = absl::GetFlag(FLAGS_guest_dir) + "/pio_storm.bin";
  const uint64_t n = absl::GetFlag(FLAGS_exits);
  std::vector<double> ours, bare;
  uint64_t exits = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
    auto a = RunPcivmm(image, n);
    auto b = RunBare(image, n);
    if (!a.ok() || !b.ok()) {
      std::fprintf(stderr, "exit-loop: %s\n",
                   (!a.ok() ? a.status() : b.status()).ToString().c_str());
      return 1;
    }
    exits = a->exits;
    ours.push_back(a->ns / static_cast<double>(a->exits));
    bare.push_back(b->ns / static_cast<double>(b->exits));
  }
  const double x = bench::Median(ours), y = bench::Median(bare);
  absl::PrintF("exit-loop: %d exits per run, %d rounds (medians)\n", exits, ours.size());
  std::printf("  %-22s %10.0f ns/exit\n", "pcivmm", x);
  std::printf("  %-22s %10.0f ns/exit\n", "bare KVM_RUN loop", y);
  std::printf("  %-22s %10.3f\n", "ratio pcivmm/bare", x / y);
  const std::string json = absl::StrFormat(
      "{\"exits\": %d, \"pcivmm_ns_per_exit\": %.1f, \"bare_ns_per_exit\": %.1f, "
      "\"ratio\": %.4f}\n",
      exits, x, y, x / y);
  bench::EmitJson(absl::GetFlag(FLAGS_json), json);
  return 0;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
