// pcivmm: run a guest on KVM and report its exits.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "vmm/exit_report.h"
#include "vmm/machine.h"
#include "vmm/pci_platform.h"
#include "vmm/test_devices.h"

ABSL_FLAG(std::string, guest_image, "", "freestanding test guest (flat binary) to run");
ABSL_FLAG(uint64_t, guest_arg, 0, "argument passed to the test guest in rdi");
ABSL_FLAG(uint64_t, ram_mib, 64, "guest RAM in MiB");
ABSL_FLAG(int, vcpus, 1, "number of vCPUs");
ABSL_FLAG(bool, stats, true, "print exit counts when the guest stops");
ABSL_FLAG(int, gpus, 0, "GPU-like emulated passthrough devices at slots 1..N");
ABSL_FLAG(uint64_t, gpu_bar1_gib, 128, "size of each GPU's 64-bit prefetchable BAR1 in GiB");
ABSL_FLAG(bool, pci_pio, true, "serve PCI config mechanism #1 (0xCF8/0xCFC); off: all-ones");
ABSL_FLAG(bool, ecam_fast_path, false,
          "serve ECAM reads from read-only shadow memory slots (zero exits; writes trap)");
ABSL_FLAG(int, ecam_buses, 1, "buses decoded by the ECAM window at 0xE0000000 (1 MiB each)");
ABSL_FLAG(bool, memory_decode, true, "hand devices off with PCI_COMMAND_MEMORY set");
ABSL_FLAG(std::string, bar_policy, "eager",
          "vBAR mapping policy: eager (map/unmap on every decode toggle) or deferred");
ABSL_FLAG(uint64_t, bar_cost_ns_per_gib, 0,
          "cost model: extra delay per GiB mapped or unmapped (14062500 = 1.8 s per 128 GiB)");
ABSL_FLAG(bool, test_devices, true,
          "attach the test devices of pcivmm_guest_abi.h (echo ports, stream port, scratch MMIO)");

namespace pcivmm {
namespace {}  // namespace

// Accepts --flag-name as well as absl's --flag_name.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    std::replace(a.begin() + 2, a.begin() + static_cast<std::ptrdiff_t>(end), '-', '_');
  }
  return args;
}

namespace {

absl::StatusOr<PciConfig> PciConfigFromFlags() {
  PciConfig c;
  const std::string policy = absl::GetFlag(FLAGS_bar_policy);
  if (policy != "eager" && policy != "deferred") {
    return absl::InvalidArgumentError(
        absl::StrFormat("--bar-policy: '%s' is neither eager nor deferred", policy));
  }
  c.bar_policy = policy == "eager" ? MapPolicy::kEager : MapPolicy::kDeferred;
  c.bar_cost.ns_per_gib = absl::GetFlag(FLAGS_bar_cost_ns_per_gib);
  c.bus_count = absl::GetFlag(FLAGS_ecam_buses);
  c.pio_enabled = absl::GetFlag(FLAGS_pci_pio);
  c.ecam_fast_path = absl::GetFlag(FLAGS_ecam_fast_path);
  c.hand_off.memory_decode = absl::GetFlag(FLAGS_memory_decode);
  const int gpus = absl::GetFlag(FLAGS_gpus);
  c.devices.reserve(static_cast<size_t>(std::max(gpus, 0)));
  for (int i = 0; i < gpus; ++i) {
    c.devices.push_back(
        GpuLikeDevice(absl::StrFormat("gpu%d", i), i + 1, absl::GetFlag(FLAGS_gpu_bar1_gib) << 30));
  }
  return c;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "pcivmm: %s\n", status.ToString().c_str());
  return kExitStatusVmmError;
}

int RunMain() {
  const std::string image = absl::GetFlag(FLAGS_guest_image);
  if (image.empty()) {
    std::fprintf(stderr, "pcivmm: --guest-image is required (a flat binary from guest-images/)\n");
    return 2;
  }
  MachineConfig config;
  config.ram_bytes = absl::GetFlag(FLAGS_ram_mib) << 20;
  config.vcpus = absl::GetFlag(FLAGS_vcpus);
  auto machine = Machine::Create(config);
  if (!machine.ok()) return Fail(machine.status());
  Machine& m = **machine;
  if (absl::GetFlag(FLAGS_test_devices)) {
    if (absl::Status st = testing::AttachTestDevices(m.pio(), m.mmio()); !st.ok()) return Fail(st);
  }
  auto pci_config = PciConfigFromFlags();
  if (!pci_config.ok()) return Fail(pci_config.status());
  auto pci = PciPlatform::Attach(m, *pci_config);
  if (!pci.ok()) return Fail(pci.status());
  std::fputs(FormatPciDevices((*pci)->bus()).c_str(), stdout);
  if ((*pci)->fast_path().enabled()) {
    absl::PrintF("ecam fast path: %d read-only slot(s), shadow %d KiB of host memory\n",
                 (*pci)->fast_path().slot_ranges().size(),
                 (*pci)->fast_path().shadow_bytes() >> 10);
  }
  if (absl::Status st = m.LoadTestGuest(image, absl::GetFlag(FLAGS_guest_arg)); !st.ok()) {
    return Fail(st);
  }
  StopReason reason = m.Run();
  std::fflush(stdout);
  std::fprintf(stderr, "pcivmm: %s (exit status %d)\n", reason.detail.c_str(), reason.exit_code);
  if (absl::GetFlag(FLAGS_stats)) {
    std::fputs(FormatExitReport(m.stats(), m.pio(), m.mmio()).c_str(), stdout);
    std::fputs(FormatConfigStats((*pci)->bus().stats()).c_str(), stdout);
    std::fputs(FormatBarMapping((*pci)->bus(), (*pci)->mapper()).c_str(), stdout);
  }
  return reason.exit_code;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("pcivmm --guest-image=FILE [--guest-arg=N] [--vcpus=N]");
  std::vector<std::string> args = pcivmm::NormalizeFlagNames(argc, argv);
  std::vector<char*> argp;
  argp.reserve(args.size());
  for (std::string& a : args) argp.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(argp.size()), argp.data());
  return pcivmm::RunMain();
}
