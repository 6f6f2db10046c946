#include "vmm/platform/machine.h"

#include <pthread.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/read_file.h"
#include "vmm/base/status_macros.h"
#include "vmm/platform/x86_platform.h"

namespace pcivmm::platform {

static_assert(PCIVMM_BOOT_MARKER_PORT == base::layout::kBootMarkerPort &&
                  PCIVMM_BOOT_MARKER_VALUE == base::layout::kBootMarkerValue,
              "the guest ABI and the platform layout disagree on the boot marker");

absl::StatusOr<std::unique_ptr<Machine>> Machine::Create(const MachineConfig& config) {
  if (config.vcpus < 1 || config.vcpus > kMaxVcpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vcpus: %d is outside 1..%d", config.vcpus, kMaxVcpus));
  }
  const uint64_t start_ns = devices::MonotonicNowNs();
  PCIVMM_ASSIGN_OR_RETURN(auto kvm, kvm::Kvm::Open(config.kvm_path));
  PCIVMM_RETURN_IF_ERROR(kvm->RequireExtension(KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"));
  PCIVMM_RETURN_IF_ERROR(kvm->RequireExtension(KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM"));
  PCIVMM_RETURN_IF_ERROR(kvm->RequireExtension(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"));
  const int max_slots = kvm->CheckExtension(KVM_CAP_NR_MEMSLOTS);
  if (max_slots < 8) {
    return absl::FailedPreconditionError(
        absl::StrFormat("KVM_CAP_NR_MEMSLOTS is %d; pcivmm needs at least 8", max_slots));
  }
  std::shared_ptr<base::BootProfile> profile =
      config.profile ? config.profile : std::make_shared<base::BootProfile>();
  PCIVMM_ASSIGN_OR_RETURN(auto vm, kvm::Vm::Create(*kvm));
  profile->Mark(base::BootPhase::kVmCreated);
  PCIVMM_ASSIGN_OR_RETURN(kvm::GuestMemory memory, kvm::GuestMemory::Create(config.ram_bytes));
  std::unique_ptr<Machine> m(new Machine(std::move(kvm), std::move(vm), std::move(memory),
                                         static_cast<uint32_t>(max_slots), config, start_ns,
                                         std::move(profile)));
  PCIVMM_RETURN_IF_ERROR(m->Init(config));
  return m;
}

Machine::Machine(std::unique_ptr<kvm::Kvm> kvm, std::unique_ptr<kvm::Vm> vm,
                 kvm::GuestMemory memory, uint32_t max_slots, const MachineConfig& config,
                 uint64_t start_ns, std::shared_ptr<base::BootProfile> profile)
    : profile_(std::move(profile)),
      kvm_(std::move(kvm)),
      vm_(std::move(vm)),
      memory_(std::move(memory)),
      memslots_(vm_.get(), max_slots),
      pio_("pio", 0x10000),
      mmio_("mmio", UINT64_MAX),
      stats_(config.vcpus),
      console_(std::make_shared<devices::DebugConsole>(config.console_echo)),
      boot_marker_(std::make_shared<devices::BootMarker>(start_ns, nullptr, profile_.get())) {}

Machine::~Machine() = default;

absl::Status Machine::Init(const MachineConfig& config) {
  PCIVMM_RETURN_IF_ERROR(memory_.InstallSlots(memslots_));
  profile_->Mark(base::BootPhase::kRamMapped);
  PCIVMM_RETURN_IF_ERROR(pio_.Register(PCIVMM_DEBUG_CONSOLE_PORT, 1, console_).status());
  PCIVMM_RETURN_IF_ERROR(
      pio_.Register(base::layout::kBootMarkerPort, devices::BootMarker::kPortCount, boot_marker_)
          .status());
  PCIVMM_RETURN_IF_ERROR(
      pio_.Register(PCIVMM_EXIT_PORT, 4, std::make_shared<devices::ExitPort>(&control_)).status());
  if (config.pc_platform) PCIVMM_RETURN_IF_ERROR(CreateInKernelIrqchip(*vm_));
  pc_platform_ = config.pc_platform;
  for (int i = 0; i < config.vcpus; ++i) {
    PCIVMM_ASSIGN_OR_RETURN(auto vcpu, kvm::Vcpu::Create(*kvm_, *vm_, i));
    PCIVMM_RETURN_IF_ERROR(kvm::SetSupportedCpuid(*kvm_, vcpu->fd(), i));
    if (config.pc_platform) PCIVMM_RETURN_IF_ERROR(SetupBootVcpuState(vcpu->fd()));
    vcpus_.push_back(std::move(vcpu));
  }
  profile_->Mark(base::BootPhase::kVcpusCreated);
  control_.SetKicker([this] {
    for (auto& v : vcpus_) v->Kick();
  });
  return absl::OkStatus();
}

absl::Status Machine::CheckTestGuestVcpus(int vcpus, std::string_view field) {
  if (vcpus <= kMaxTestGuestVcpus) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: %d, but a test guest's stacks (guest ABI) fit %d vCPUs", field, vcpus,
                      kMaxTestGuestVcpus));
}

absl::Status Machine::LoadTestGuest(const std::string& path, uint64_t arg) {
  PCIVMM_RETURN_IF_ERROR(CheckTestGuestVcpus(vcpu_count(), "vcpus"));
  const uint64_t room =
      memory_.size() > PCIVMM_GUEST_LOAD_ADDR ? memory_.size() - PCIVMM_GUEST_LOAD_ADDR : 0;
  PCIVMM_ASSIGN_OR_RETURN(
      std::string image,
      base::ReadBoundedFile(path, room, "--guest-image", "the guest RAM above the load address"));
  if (image.empty()) return absl::InvalidArgumentError(absl::StrFormat("%s is empty", path));
  auto bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(image.data()), image.size());
  if (absl::Status st = memory_.Write(PCIVMM_GUEST_LOAD_ADDR, bytes); !st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s (%d bytes) does not fit in guest RAM at %#x: %s", path, image.size(),
                        PCIVMM_GUEST_LOAD_ADDR, st.message()));
  }
  PCIVMM_RETURN_IF_ERROR(kvm::WriteBootTables(memory_));
  for (auto& v : vcpus_) {
    const auto index = static_cast<uint64_t>(v->index());
    kvm::LongModeEntry entry{PCIVMM_GUEST_LOAD_ADDR,
                             PCIVMM_GUEST_STACK_TOP - index * PCIVMM_GUEST_STACK_SIZE, arg, index};
    PCIVMM_RETURN_IF_ERROR(kvm::EnterLongMode(v->fd(), entry));
  }
  return absl::OkStatus();
}

kvm::StopReason Machine::RunVcpu(int index) {
  pthread_setname_np(pthread_self(), absl::StrCat("vcpu ", index).c_str());
  if (vcpu_seccomp_ != nullptr) {
    if (absl::Status st = vcpu_seccomp_->Apply(/*all_threads=*/false); !st.ok()) {
      kvm::StopReason reason{kvm::kExitStatusVmmError,
                             absl::StrCat("vCPU ", index, ": ", st.message())};
      control_.RequestStop(reason);
      return reason;
    }
  }
  kvm::Vcpu& v = vcpu(index);
  kvm::ExitDispatcher dispatcher(&pio_, &mmio_, &stats_.vcpu(index), index, v.run_size());
  if (index == 0) profile_->Mark(base::BootPhase::kFirstKvmRun);
  kvm::StopReason reason = v.Run(dispatcher, control_);
  control_.LeaveRun();
  // A vCPU that fails takes the VM down; one that halts leaves the others running.
  if (reason.exit_code != 0) control_.RequestStop(reason);
  return reason;
}

kvm::StopReason Machine::Run() {
  std::vector<kvm::StopReason> reasons(vcpus_.size());
  std::vector<std::thread> threads;
  control_.BeginRun(static_cast<int>(vcpus_.size()));
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    threads.emplace_back([this, i, &reasons] { reasons[i] = RunVcpu(static_cast<int>(i)); });
  }
  for (auto& t : threads) t.join();
  profile_->Mark(base::BootPhase::kExit);
  if (auto r = control_.reason()) return *r;
  return reasons.front();
}

}  // namespace pcivmm::platform
