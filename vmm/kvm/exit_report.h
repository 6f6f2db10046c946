#ifndef PCIVMM_VMM_KVM_EXIT_REPORT_H_
#define PCIVMM_VMM_KVM_EXIT_REPORT_H_

#include <string>

#include "mmio/bus.h"
#include "vmm/kvm/exit_stats.h"

namespace pcivmm::kvm {

// A human-readable table of the non-zero exit counters: by reason, by port, by MMIO region.
std::string FormatExitReport(const ExitStats& stats, const mmio::Bus& pio, const mmio::Bus& mmio);

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_EXIT_REPORT_H_
