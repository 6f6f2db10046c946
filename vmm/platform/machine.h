#ifndef PCIVMM_VMM_PLATFORM_MACHINE_H_
#define PCIVMM_VMM_PLATFORM_MACHINE_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "mmio/bus.h"
#include "mmio/memslot_table.h"
#include "vmm/base/boot_profile.h"
#include "vmm/base/seccomp.h"
#include "vmm/devices/boot_marker.h"
#include "vmm/devices/debug_ports.h"
#include "vmm/kvm/exit_stats.h"
#include "vmm/kvm/guest_memory.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/long_mode.h"
#include "vmm/kvm/run_control.h"
#include "vmm/kvm/vcpu.h"

namespace pcivmm::platform {

struct MachineConfig {
  uint64_t ram_bytes = 64ull << 20;
  int vcpus = 1;
  FILE* console_echo = stdout;  // where the debug console is echoed; nullptr: nowhere
  std::string kvm_path = "/dev/kvm";
  // The PC platform for Linux: in-kernel PIC/IOAPIC/LAPIC and PIT, and BIOS-like vCPU state
  // (MSRs, LAPIC LINT0/1). Off for freestanding test guests.
  bool pc_platform = false;
  // Where the boot's phases are marked; nullptr: the machine makes its own.
  std::shared_ptr<base::BootProfile> profile;
};

// One VM: KVM fds, guest RAM, memslots, the port and MMIO buses, vCPUs and their counters.
// Devices are added to the buses before Run(); Run() blocks until the VM stops.
class Machine {
 public:
  static constexpr int kMaxVcpus = 64;
  // A test guest's vCPU n has its stack at PCIVMM_GUEST_STACK_TOP - n * PCIVMM_GUEST_STACK_SIZE
  // (the guest ABI), above the boot GDT and page tables: this many fit.
  static constexpr int kMaxTestGuestVcpus = static_cast<int>(
      (PCIVMM_GUEST_STACK_TOP - kvm::kBootStructuresEnd) / PCIVMM_GUEST_STACK_SIZE);
  // InvalidArgument naming `field` when a test guest would get more vCPUs than fit.
  static absl::Status CheckTestGuestVcpus(int vcpus, std::string_view field);
  static absl::StatusOr<std::unique_ptr<Machine>> Create(const MachineConfig& config);
  ~Machine();

  // Loads a freestanding guest (a flat binary) at PCIVMM_GUEST_LOAD_ADDR and points every
  // vCPU at it in long mode with rdi = `arg`, rsi = the vCPU index.
  absl::Status LoadTestGuest(const std::string& path, uint64_t arg);

  // Runs every vCPU on its own thread until the VM stops; returns why.
  kvm::StopReason Run();
  // A seccomp filter each vCPU thread installs on itself before its first KVM_RUN (on top of
  // the process's). A thread that cannot install it stops the VM.
  void SetVcpuSeccomp(std::shared_ptr<const base::SeccompProgram> program) {
    vcpu_seccomp_ = std::move(program);
  }
  void RequestStop(kvm::StopReason reason) { control_.RequestStop(std::move(reason)); }
  // Stop, pause and resume for a controller (the API).
  kvm::RunControl& control() { return control_; }

  kvm::Kvm& kvm() { return *kvm_; }
  kvm::Vm& vm() { return *vm_; }
  kvm::GuestMemory& memory() { return memory_; }
  mmio::MemslotTable& memslots() { return memslots_; }
  mmio::Bus& pio() { return pio_; }
  mmio::Bus& mmio() { return mmio_; }
  kvm::ExitStats& stats() { return stats_; }
  const devices::DebugConsole& console() const { return *console_; }
  // The guest ABI's boot-done marker port (layout::kBootMarkerPort), timed from Create().
  devices::BootMarker& boot_marker() { return *boot_marker_; }
  const devices::BootMarker& boot_marker() const { return *boot_marker_; }
  kvm::Vcpu& vcpu(int index) { return *vcpus_[static_cast<size_t>(index)]; }
  int vcpu_count() const { return static_cast<int>(vcpus_.size()); }
  // The in-kernel irqchip and PC vCPU state are present (MachineConfig::pc_platform).
  bool pc_platform() const { return pc_platform_; }
  base::BootProfile& profile() { return *profile_; }
  const base::BootProfile& profile() const { return *profile_; }

 private:
  Machine(std::unique_ptr<kvm::Kvm> kvm, std::unique_ptr<kvm::Vm> vm, kvm::GuestMemory memory,
          uint32_t max_slots, const MachineConfig& config, uint64_t start_ns,
          std::shared_ptr<base::BootProfile> profile);
  absl::Status Init(const MachineConfig& config);
  kvm::StopReason RunVcpu(int index);

  std::shared_ptr<const base::SeccompProgram> vcpu_seccomp_;
  std::shared_ptr<base::BootProfile> profile_;
  std::unique_ptr<kvm::Kvm> kvm_;
  std::unique_ptr<kvm::Vm> vm_;
  kvm::GuestMemory memory_;
  mmio::MemslotTable memslots_;
  mmio::Bus pio_;
  mmio::Bus mmio_;
  kvm::ExitStats stats_;
  kvm::RunControl control_;
  std::shared_ptr<devices::DebugConsole> console_;
  std::shared_ptr<devices::BootMarker> boot_marker_;
  std::vector<std::unique_ptr<kvm::Vcpu>> vcpus_;
  bool pc_platform_ = false;
};

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_MACHINE_H_
