#include "vmm/kvm/exit_report.h"

#include "absl/strings/str_format.h"

namespace pcivmm::kvm {
namespace {

void AppendReasons(const ExitStats& stats, std::string* out) {
  absl::StrAppendFormat(out, "exits: %d total\n", stats.total_exits());
  for (uint32_t r = 0; r < VcpuExitStats::kMaxExitReason; ++r) {
    if (uint64_t n = stats.exits(r); n > 0) {
      absl::StrAppendFormat(out, "  %-16s %12d\n", ExitReasonName(r), n);
    }
  }
}

void AppendPorts(const ExitStats& stats, const mmio::Bus& pio, std::string* out) {
  absl::StrAppendFormat(out, "pio exits by port (%s):\n", pio.name());
  for (uint32_t p = 0; p < VcpuExitStats::kPorts; ++p) {
    const auto port = static_cast<uint16_t>(p);
    const uint64_t in = stats.pio(port, mmio::Direction::kRead);
    const uint64_t out_count = stats.pio(port, mmio::Direction::kWrite);
    if (in + out_count > 0) {
      absl::StrAppendFormat(out, "  %#06x in %12d out %12d\n", p, in, out_count);
    }
  }
}

void AppendRegions(const ExitStats& stats, const mmio::Bus& mmio, std::string* out) {
  absl::StrAppendFormat(out, "mmio exits by region:\n");
  for (int region = mmio::Bus::kUnclaimed; region < mmio.region_count(); ++region) {
    const uint64_t rd = stats.mmio(region, mmio::Direction::kRead);
    const uint64_t wr = stats.mmio(region, mmio::Direction::kWrite);
    if (rd + wr > 0) {
      absl::StrAppendFormat(out, "  %-20s read %12d write %12d\n", mmio.RegionName(region), rd, wr);
    }
  }
}

}  // namespace

std::string FormatExitReport(const ExitStats& stats, const mmio::Bus& pio, const mmio::Bus& mmio) {
  std::string out;
  AppendReasons(stats, &out);
  AppendPorts(stats, pio, &out);
  AppendRegions(stats, mmio, &out);
  return out;
}

}  // namespace pcivmm::kvm
