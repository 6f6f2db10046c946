#include "vmm/kvm/exit_stats.h"

#include <linux/kvm.h>

#include <cstdio>

namespace pcivmm::kvm {

VcpuExitStats::VcpuExitStats()
    : ports_(static_cast<uint64_t*>(std::calloc(size_t{kPorts} * 2, sizeof(uint64_t)))) {
  if (!ports_) {
    std::fputs("pcivmm: out of memory for exit counters\n", stderr);
    std::abort();
  }
}

uint64_t VcpuExitStats::exits(uint32_t reason) const {
  return reason < kMaxExitReason ? Load(reasons_[reason]) : 0;
}

uint64_t VcpuExitStats::total_exits() const {
  uint64_t sum = 0;
  for (const uint64_t& c : reasons_) sum += Load(c);
  return sum;
}

uint64_t VcpuExitStats::pio(uint16_t port, mmio::Direction dir) const {
  return Load(ports_.get()[PortIndex(port, dir)]);
}

uint64_t VcpuExitStats::mmio(int region, mmio::Direction dir) const {
  if (region < mmio::Bus::kUnclaimed || region >= mmio::Bus::kMaxRegions) return 0;
  return Load(mmio_[MmioIndex(region, dir)]);
}

ExitStats::ExitStats(int vcpus) {
  for (int i = 0; i < vcpus; ++i) per_vcpu_.push_back(std::make_unique<VcpuExitStats>());
}

uint64_t ExitStats::exits(uint32_t reason) const {
  uint64_t sum = 0;
  for (const auto& v : per_vcpu_) sum += v->exits(reason);
  return sum;
}

uint64_t ExitStats::total_exits() const {
  uint64_t sum = 0;
  for (const auto& v : per_vcpu_) sum += v->total_exits();
  return sum;
}

uint64_t ExitStats::pio(uint16_t port, mmio::Direction dir) const {
  uint64_t sum = 0;
  for (const auto& v : per_vcpu_) sum += v->pio(port, dir);
  return sum;
}

uint64_t ExitStats::mmio(int region, mmio::Direction dir) const {
  uint64_t sum = 0;
  for (const auto& v : per_vcpu_) sum += v->mmio(region, dir);
  return sum;
}

const char* ExitReasonName(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN:
      return "UNKNOWN";
    case KVM_EXIT_EXCEPTION:
      return "EXCEPTION";
    case KVM_EXIT_IO:
      return "IO";
    case KVM_EXIT_HYPERCALL:
      return "HYPERCALL";
    case KVM_EXIT_DEBUG:
      return "DEBUG";
    case KVM_EXIT_HLT:
      return "HLT";
    case KVM_EXIT_MMIO:
      return "MMIO";
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return "IRQ_WINDOW_OPEN";
    case KVM_EXIT_SHUTDOWN:
      return "SHUTDOWN";
    case KVM_EXIT_FAIL_ENTRY:
      return "FAIL_ENTRY";
    case KVM_EXIT_INTR:
      return "INTR";
    case KVM_EXIT_SET_TPR:
      return "SET_TPR";
    case KVM_EXIT_TPR_ACCESS:
      return "TPR_ACCESS";
    case KVM_EXIT_NMI:
      return "NMI";
    case KVM_EXIT_INTERNAL_ERROR:
      return "INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT:
      return "SYSTEM_EVENT";
    case KVM_EXIT_X86_RDMSR:
      return "X86_RDMSR";
    case KVM_EXIT_X86_WRMSR:
      return "X86_WRMSR";
    default:
      return "OTHER";
  }
}

}  // namespace pcivmm::kvm
