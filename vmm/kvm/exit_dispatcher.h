#ifndef PCIVMM_VMM_KVM_EXIT_DISPATCHER_H_
#define PCIVMM_VMM_KVM_EXIT_DISPATCHER_H_

#include <linux/kvm.h>

#include <cstddef>
#include <optional>

#include "mmio/bus.h"
#include "vmm/kvm/exit_stats.h"
#include "vmm/kvm/run_control.h"

namespace pcivmm::kvm {

// Turns one KVM exit (the shared kvm_run page) into bus accesses and counts it. Returns a
// StopReason for exits that end the vCPU (HLT, SHUTDOWN, FAIL_ENTRY, INTERNAL_ERROR,
// SYSTEM_EVENT, unknown reasons), nullopt to re-enter the guest. Needs no KVM: unit tests
// feed it scripted kvm_run pages.
class ExitDispatcher {
 public:
  ExitDispatcher(mmio::Bus* pio, mmio::Bus* mmio, VcpuExitStats* stats, int vcpu, size_t run_size)
      : pio_(pio), mmio_(mmio), stats_(stats), vcpu_(vcpu), run_size_(run_size) {}

  std::optional<StopReason> Dispatch(kvm_run* run);

 private:
  std::optional<StopReason> HandleIo(kvm_run* run);
  void HandleMmio(kvm_run* run);
  StopReason HandleSystemEvent(const kvm_run* run) const;

  mmio::Bus::View pio_;
  mmio::Bus::View mmio_;
  VcpuExitStats* const stats_;
  const int vcpu_;
  const size_t run_size_;
};

// Exit statuses of the VMM for the ways a guest can end (exit port codes are the guest's).
inline constexpr int kExitStatusTripleFault = 70;
inline constexpr int kExitStatusFailEntry = 71;
inline constexpr int kExitStatusInternalError = 72;
inline constexpr int kExitStatusGuestCrash = 73;
inline constexpr int kExitStatusUnhandledExit = 74;
inline constexpr int kExitStatusVmmError = 75;
// The guest did not write the boot marker within --boot-timeout (vmm/platform/boot_watchdog.h).
inline constexpr int kExitStatusBootTimeout = 76;

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_EXIT_DISPATCHER_H_
