// Benchmark vfio: real passthrough devices in the VFIO lab (./dev bench vfio boots it with a
// 256 MiB and a 4 GiB ivshmem-plain and an edu, all bound to vfio-pci). Measures:
//   - open: container + group + device, region/IRQ info, BAR mmaps (median of --rounds);
//   - config reads of the real device per path (PIO, ECAM trap, ECAM fast path with the
//     shadow-refresh rule), (T(N) - T(1)) / (N - 1) as in config-reads, an emulated device
//     alongside, and the host's own config-region pread;
//   - KVM slot add/delete over the ivshmem BAR mapping at 256 MiB and 4 GiB, before and after
//     the host faulted the BAR in;
//   - the device's own decode toggle: VFIO zaps the whole BAR on decode off, and the next
//     touch faults it all in again; timed apart from any slot ioctl;
//   - the vBAR mapper's histogram for the real 4 GiB BAR over a guest decode off/on;
//   - a guest read storm over the RAM BAR (slot) and over edu's MMIO BAR (slot and trap).
// Timings are the lab's (TCG-emulated host): compare ratios within one run.
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/bench/bench_util.h"
#include "vmm/base/status_macros.h"
#include "vmm/devices/test_devices.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

ABSL_FLAG(std::string, guest_dir, "", "directory holding cfg_storm.bin and vfio_test.bin");
ABSL_FLAG(std::string, json, "", "where to write the JSON result");
ABSL_FLAG(uint64_t, reads, 5000, "config reads per storm");
ABSL_FLAG(uint64_t, storm, 1000000, "guest qword reads over the RAM BAR");
ABSL_FLAG(int, rounds, 5, "repetitions of the host-side measurements (median)");

namespace pcivmm {
namespace {

using Clock = std::chrono::steady_clock;

struct Devices {
  std::string small;  // ivshmem, 256 MiB BAR2
  std::string large;  // ivshmem, 4 GiB BAR2
  std::string edu;
};

absl::StatusOr<Devices> FindDevices() {
  const char* ivshmem = std::getenv("PCIVMM_VFIO_IVSHMEM");
  const char* edu = std::getenv("PCIVMM_VFIO_EDU");
  if (ivshmem == nullptr || edu == nullptr || *edu == 0) {
    return absl::FailedPreconditionError("run in the VFIO lab: ./dev bench vfio");
  }
  Devices d{"", "", std::string(absl::StripAsciiWhitespace(edu))};
  PCIVMM_ASSIGN_OR_RETURN(auto container, vfio::VfioContainer::Open());
  for (absl::string_view bdf : absl::StrSplit(ivshmem, ' ', absl::SkipEmpty())) {
    PCIVMM_ASSIGN_OR_RETURN(auto dev, vfio::VfioDevice::Open(*container, std::string(bdf)));
    (dev->region(2).size >= (4ull << 30) ? d.large : d.small) = std::string(bdf);
  }
  if (d.small.empty() || d.large.empty()) {
    return absl::FailedPreconditionError("need a 256 MiB and a 4 GiB ivshmem device");
  }
  return d;
}

double Ns(Clock::time_point t0) { return bench::NsSince(t0); }

// --- host side -------------------------------------------------------------------------------

absl::StatusOr<double> OpenNs(const std::string& bdf) {
  std::vector<double> ns;
  for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
    const auto t0 = Clock::now();
    PCIVMM_ASSIGN_OR_RETURN(auto container, vfio::VfioContainer::Open());
    PCIVMM_ASSIGN_OR_RETURN(auto dev, vfio::VfioDevice::Open(*container, bdf));
    ns.push_back(Ns(t0));
  }
  return bench::Median(ns);
}

absl::StatusOr<double> ConfigPreadNs(const std::string& bdf) {
  PCIVMM_ASSIGN_OR_RETURN(auto container, vfio::VfioContainer::Open());
  PCIVMM_ASSIGN_OR_RETURN(auto dev, vfio::VfioDevice::Open(*container, bdf));
  constexpr int kReads = 10000;
  uint8_t b[4];
  const auto t0 = Clock::now();
  for (int i = 0; i < kReads; ++i) {
    PCIVMM_RETURN_IF_ERROR(dev->Read(vfio::kRegionConfig, 0, absl::MakeSpan(b)));
  }
  return Ns(t0) / kReads;
}

struct SlotCost {
  double add_ns = 0, delete_ns = 0, add_faulted_ns = 0, delete_faulted_ns = 0;
};

// A raw memslot over the device's BAR mapping (what the mapper installs), before and after
// the host kernel faulted the whole BAR in.
absl::StatusOr<SlotCost> SlotNs(const std::string& bdf) {
  platform::MachineConfig mc;
  mc.console_echo = nullptr;
  mc.ram_bytes = 16 << 20;
  PCIVMM_ASSIGN_OR_RETURN(auto m, platform::Machine::Create(mc));
  PCIVMM_ASSIGN_OR_RETURN(auto container, vfio::VfioContainer::Open());
  PCIVMM_ASSIGN_OR_RETURN(auto dev, vfio::VfioDevice::Open(*container, bdf));
  const vfio::MappedArea& bar = dev->region(2).mapped.at(0);
  constexpr uint64_t kGpa = 64ull << 30;
  SlotCost c;
  for (bool faulted : {false, true}) {
    if (faulted) (void)*static_cast<volatile uint8_t*>(bar.host);
    std::vector<double> add, del;
    for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
      const auto t0 = Clock::now();
      PCIVMM_ASSIGN_OR_RETURN(uint32_t id, m->memslots().Install(kGpa, bar.size, bar.host, false));
      add.push_back(Ns(t0));
      const auto t1 = Clock::now();
      PCIVMM_RETURN_IF_ERROR(m->memslots().Remove(id));
      del.push_back(Ns(t1));
    }
    (faulted ? c.add_faulted_ns : c.add_ns) = bench::Median(add);
    (faulted ? c.delete_faulted_ns : c.delete_ns) = bench::Median(del);
  }
  return c;
}

struct DecodeCost {
  double first_touch_ns = 0, off_ns = 0, on_ns = 0, refault_ns = 0;
};

// The device's own decode toggle, as a VMM that forwards the guest's command writes would
// cause: decode off makes vfio-pci zap every mapping of the BAR, and the next touch faults
// the whole BAR in again. No slot is involved.
absl::StatusOr<DecodeCost> DecodeToggleNs(const std::string& bdf) {
  PCIVMM_ASSIGN_OR_RETURN(auto container, vfio::VfioContainer::Open());
  PCIVMM_ASSIGN_OR_RETURN(auto dev, vfio::VfioDevice::Open(*container, bdf));
  volatile uint8_t* bar = dev->region(2).mapped.at(0).host;
  uint8_t cmd[2];
  PCIVMM_RETURN_IF_ERROR(dev->Read(vfio::kRegionConfig, pci::cfg::kCommand, absl::MakeSpan(cmd)));
  const uint8_t on[2] = {static_cast<uint8_t>(cmd[0] | pci::cfg::kCommandMemory), cmd[1]};
  const uint8_t off[2] = {static_cast<uint8_t>(on[0] & ~pci::cfg::kCommandMemory), cmd[1]};
  PCIVMM_RETURN_IF_ERROR(dev->Write(vfio::kRegionConfig, pci::cfg::kCommand, on));
  DecodeCost c;
  auto t = Clock::now();
  (void)bar[0];
  c.first_touch_ns = Ns(t);
  std::vector<double> off_ns, on_ns, refault_ns;
  for (int i = 0; i < absl::GetFlag(FLAGS_rounds); ++i) {
    t = Clock::now();
    PCIVMM_RETURN_IF_ERROR(dev->Write(vfio::kRegionConfig, pci::cfg::kCommand, off));
    off_ns.push_back(Ns(t));
    t = Clock::now();
    PCIVMM_RETURN_IF_ERROR(dev->Write(vfio::kRegionConfig, pci::cfg::kCommand, on));
    on_ns.push_back(Ns(t));
    t = Clock::now();
    (void)bar[0];
    refault_ns.push_back(Ns(t));
  }
  c.off_ns = bench::Median(off_ns);
  c.on_ns = bench::Median(on_ns);
  c.refault_ns = bench::Median(refault_ns);
  return c;
}

// --- guests ----------------------------------------------------------------------------------

struct GuestRun {
  double ns = 0;
  uint64_t config_exits = 0;
  std::map<std::string, uint64_t> reports;
  pci::BarMapStats bar2;
  uint64_t tsc_khz = 0;
};

absl::StatusOr<GuestRun> RunGuest(const platform::PciConfig& pc, const std::string& image,
                                  uint64_t arg) {
  platform::MachineConfig mc;
  mc.console_echo = nullptr;
  mc.ram_bytes = 16 << 20;
  PCIVMM_ASSIGN_OR_RETURN(auto m, platform::Machine::Create(mc));
  PCIVMM_ASSIGN_OR_RETURN(auto pci, platform::PciPlatform::Attach(*m, pc));
  PCIVMM_RETURN_IF_ERROR(m->LoadTestGuest(image, arg));
  GuestRun g;
  const auto t0 = Clock::now();
  kvm::StopReason r = m->Run();
  g.ns = Ns(t0);
  if (r.exit_code != 0) return absl::InternalError(absl::StrFormat("%s: %s", image, r.detail));
  g.config_exits = platform::ConfigExitCount(m->stats(), *pci);
  g.reports = devices::testing::ParseReports(m->console().output());
  pci::PciFunction* f = pci->bus().Find({0, 1, 0});
  if (f != nullptr) g.bar2 = pci->mapper().stats(*f, 2);
  const int khz = ::ioctl(m->vcpu(0).fd(), KVM_GET_TSC_KHZ, 0);
  g.tsc_khz = khz > 0 ? static_cast<uint64_t>(khz) : 0;
  return g;
}

platform::PciConfig RealDevice(const std::string& bdf, bool fast, bool mmap = true,
                               pci::MapPolicy policy = pci::MapPolicy::kEager) {
  platform::PciConfig pc;
  pc.ecam_fast_path = fast;
  pc.bar_policy = policy;
  pc.vfio = {{.host_address = bdf, .slot = 1, .config_fast_path = fast, .mmap_bars = mmap}};
  return pc;
}

platform::PciConfig EmulatedDevice(bool fast) {
  platform::PciConfig pc;
  pc.ecam_fast_path = fast;
  pc.bar_policy = pci::MapPolicy::kDeferred;
  pc.devices = {pci::GpuLikeDevice("gpu0", 1, 1ull << 30)};
  return pc;
}

struct PathCost {
  double real_ns = 0, emulated_ns = 0;
  uint64_t real_exits = 0;
  uint64_t reads = 0;
};

// The fast path reads 100x as many: its reads cost ~1/100 of an exit.
absl::StatusOr<PathCost> ConfigReadNs(const std::string& bdf, bool ecam, bool fast) {
  const std::string image = absl::GetFlag(FLAGS_guest_dir) + "/cfg_storm.bin";
  const uint64_t n = absl::GetFlag(FLAGS_reads) * (fast ? 100 : 1);
  const uint64_t path = ecam ? 1ull << 32 : 0;
  PathCost c;
  c.reads = n;
  PCIVMM_ASSIGN_OR_RETURN(GuestRun big, RunGuest(RealDevice(bdf, fast), image, path | n));
  PCIVMM_ASSIGN_OR_RETURN(GuestRun one, RunGuest(RealDevice(bdf, fast), image, path | 1));
  c.real_ns = (big.ns - one.ns) / static_cast<double>(n - 1);
  c.real_exits = big.config_exits;
  PCIVMM_ASSIGN_OR_RETURN(GuestRun ebig, RunGuest(EmulatedDevice(fast), image, path | n));
  PCIVMM_ASSIGN_OR_RETURN(GuestRun eone, RunGuest(EmulatedDevice(fast), image, path | 1));
  c.emulated_ns = (ebig.ns - eone.ns) / static_cast<double>(n - 1);
  return c;
}

uint64_t VfioArg(uint64_t mode, int bar, uint64_t count = 0) {
  return mode | 1 << 8 | uint64_t(bar) << 16 | count << 32;
}

// ns per guest read from the guest's TSC cycles.
absl::StatusOr<double> StormNs(const platform::PciConfig& pc, int bar, uint64_t count) {
  const std::string image = absl::GetFlag(FLAGS_guest_dir) + "/vfio_test.bin";
  PCIVMM_ASSIGN_OR_RETURN(GuestRun g, RunGuest(pc, image, VfioArg(5, bar, count)));
  if (g.tsc_khz == 0) return absl::InternalError("KVM_GET_TSC_KHZ failed");
  const double cycles = static_cast<double>(g.reports["storm_cycles"]);
  return cycles * 1e6 / static_cast<double>(g.tsc_khz) / static_cast<double>(count);
}

// --- report ----------------------------------------------------------------------------------

struct Results {
  Devices dev;
  double open_small = 0, open_large = 0, open_edu = 0, pread_ns = 0;
  PathCost pio, trap, fast;
  SlotCost slot_small, slot_large;
  DecodeCost decode_small, decode_large;
  pci::BarMapStats mapper;
  double storm_ram = 0, storm_edu_slot = 0, storm_edu_trap = 0;
};

absl::StatusOr<Results> Measure() {
  Results r;
  PCIVMM_ASSIGN_OR_RETURN(r.dev, FindDevices());
  const Devices& d = r.dev;
  PCIVMM_ASSIGN_OR_RETURN(r.open_small, OpenNs(d.small));
  PCIVMM_ASSIGN_OR_RETURN(r.open_large, OpenNs(d.large));
  PCIVMM_ASSIGN_OR_RETURN(r.open_edu, OpenNs(d.edu));
  PCIVMM_ASSIGN_OR_RETURN(r.pread_ns, ConfigPreadNs(d.small));
  PCIVMM_ASSIGN_OR_RETURN(r.pio, ConfigReadNs(d.small, false, false));
  PCIVMM_ASSIGN_OR_RETURN(r.trap, ConfigReadNs(d.small, true, false));
  PCIVMM_ASSIGN_OR_RETURN(r.fast, ConfigReadNs(d.small, true, true));
  PCIVMM_ASSIGN_OR_RETURN(r.slot_small, SlotNs(d.small));
  PCIVMM_ASSIGN_OR_RETURN(r.slot_large, SlotNs(d.large));
  PCIVMM_ASSIGN_OR_RETURN(r.decode_small, DecodeToggleNs(d.small));
  PCIVMM_ASSIGN_OR_RETURN(r.decode_large, DecodeToggleNs(d.large));
  const std::string vfio_test = absl::GetFlag(FLAGS_guest_dir) + "/vfio_test.bin";
  PCIVMM_ASSIGN_OR_RETURN(GuestRun m,
                          RunGuest(RealDevice(d.large, false), vfio_test, VfioArg(3, 2)));
  r.mapper = m.bar2;
  const uint64_t n = absl::GetFlag(FLAGS_storm);
  PCIVMM_ASSIGN_OR_RETURN(r.storm_ram, StormNs(RealDevice(d.small, false), 2, n));
  PCIVMM_ASSIGN_OR_RETURN(r.storm_edu_slot, StormNs(RealDevice(d.edu, false), 0, n / 100));
  PCIVMM_ASSIGN_OR_RETURN(r.storm_edu_trap, StormNs(RealDevice(d.edu, false, false), 0, n / 1000));
  return r;
}

void Print(const Results& r) {
  absl::PrintF("vfio: ivshmem %s (256 MiB BAR2), %s (4 GiB BAR2), edu %s; lab timings\n",
               r.dev.small, r.dev.large, r.dev.edu);
  absl::PrintF("  open (container+group+device+mmaps)   256M %.2f ms   4G %.2f ms   edu %.2f ms\n",
               r.open_small / 1e6, r.open_large / 1e6, r.open_edu / 1e6);
  absl::PrintF("  config read, host pread of the config region: %.2f us\n", r.pread_ns / 1e3);
  absl::PrintF("  %-28s %10s %14s %14s %12s\n", "guest config read, path", "reads", "real ns/read",
               "emulated ns", "real exits");
  for (const auto& [name, c] :
       {std::pair{"pio", r.pio}, {"ecam trap", r.trap}, {"ecam fast (shadow rule)", r.fast}}) {
    absl::PrintF("  %-28s %10d %14.0f %14.0f %12d\n", name, c.reads, c.real_ns, c.emulated_ns,
                 c.real_exits);
  }
  absl::PrintF("  %-28s %12s %12s %16s %18s\n", "KVM slot over the BAR", "add us", "delete us",
               "add faulted us", "delete faulted us");
  for (const auto& [name, s] : {std::pair{"256 MiB", r.slot_small}, {"4 GiB", r.slot_large}}) {
    absl::PrintF("  %-28s %12.1f %12.1f %16.1f %18.1f\n", name, s.add_ns / 1e3, s.delete_ns / 1e3,
                 s.add_faulted_ns / 1e3, s.delete_faulted_ns / 1e3);
  }
  absl::PrintF("  %-28s %14s %12s %12s %12s\n", "device decode toggle (VFIO)", "first touch ms",
               "off ms", "on ms", "refault ms");
  for (const auto& [name, d] : {std::pair{"256 MiB", r.decode_small}, {"4 GiB", r.decode_large}}) {
    absl::PrintF("  %-28s %14.2f %12.2f %12.2f %12.2f\n", name, d.first_touch_ns / 1e6,
                 d.off_ns / 1e6, d.on_ns / 1e6, d.refault_ns / 1e6);
  }
  const pci::LatencyHistogram& h = r.mapper.ioctl;
  absl::PrintF(
      "  mapper, 4 GiB real BAR, guest decode off/on (eager): maps %d unmaps %d, slot "
      "ioctls n=%d min %.1f us max %.1f us; the device's decode is never toggled\n",
      r.mapper.maps, r.mapper.unmaps, h.count, static_cast<double>(h.min_ns) / 1e3,
      static_cast<double>(h.max_ns) / 1e3);
  absl::PrintF(
      "  guest read storm: RAM BAR via slot %.1f ns/read (%d reads); edu MMIO via slot "
      "%.0f ns/read, via trap %.0f ns/read\n",
      r.storm_ram, absl::GetFlag(FLAGS_storm), r.storm_edu_slot, r.storm_edu_trap);
}

std::string Json(const Results& r) {
  auto path = [](const PathCost& c) {
    return absl::StrFormat(
        "{\"reads\": %d, \"real_ns_per_read\": %.0f, \"emulated_ns_per_read\": %.0f, "
        "\"real_config_exits\": %d}",
        c.reads, c.real_ns, c.emulated_ns, c.real_exits);
  };
  auto slot = [](const SlotCost& s) {
    return absl::StrFormat(
        "{\"add_ns\": %.0f, \"delete_ns\": %.0f, \"add_faulted_ns\": %.0f, "
        "\"delete_faulted_ns\": %.0f}",
        s.add_ns, s.delete_ns, s.add_faulted_ns, s.delete_faulted_ns);
  };
  auto decode = [](const DecodeCost& d) {
    return absl::StrFormat(
        "{\"first_touch_ns\": %.0f, \"decode_off_ns\": %.0f, \"decode_on_ns\": %.0f, "
        "\"refault_ns\": %.0f}",
        d.first_touch_ns, d.off_ns, d.on_ns, d.refault_ns);
  };
  return absl::StrFormat(
      "{\"open_ns\": {\"ivshmem_256m\": %.0f, \"ivshmem_4g\": %.0f, \"edu\": %.0f}, "
      "\"config_pread_ns\": %.0f, \"config_read\": {\"pio\": %s, "
      "\"ecam_trap\": %s, \"ecam_fast\": %s}, \"slot\": {\"256m\": %s, \"4g\": %s}, "
      "\"device_decode_toggle\": {\"256m\": %s, \"4g\": %s}, \"mapper_4g_bar\": {\"maps\": "
      "%d, \"unmaps\": %d, \"ioctl_ns_sum\": %d, \"ioctl_ns_max\": %d}, \"storm\": "
      "{\"ram_bar_slot_ns_per_read\": %.1f, \"edu_slot_ns_per_read\": %.0f, "
      "\"edu_trap_ns_per_read\": %.0f, \"reads\": %d}}\n",
      r.open_small, r.open_large, r.open_edu, r.pread_ns, path(r.pio), path(r.trap), path(r.fast),
      slot(r.slot_small), slot(r.slot_large), decode(r.decode_small), decode(r.decode_large),
      r.mapper.maps, r.mapper.unmaps, r.mapper.ioctl.sum_ns, r.mapper.ioctl.max_ns, r.storm_ram,
      r.storm_edu_slot, r.storm_edu_trap, absl::GetFlag(FLAGS_storm));
}

int Main() {
  auto r = Measure();
  if (!r.ok()) {
    std::fprintf(stderr, "vfio bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  Print(*r);
  bench::EmitJson(absl::GetFlag(FLAGS_json), Json(*r));
  return 0;
}

}  // namespace
}  // namespace pcivmm

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return pcivmm::Main();
}
