#include "vmm/platform/x86_platform.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"
#include "vmm/kvm/kvm_uapi.h"

namespace pcivmm::platform {
namespace {

// MSR indices (Intel SDM vol. 4, table 2-2; AMD APM vol. 2 for the SYSCALL MSRs).
constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrSysenterCs = 0x174;
constexpr uint32_t kMsrSysenterEsp = 0x175;
constexpr uint32_t kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrMiscEnable = 0x1A0;
constexpr uint32_t kMsrMtrrDefType = 0x2FF;
constexpr uint32_t kMsrStar = 0xC0000081;
constexpr uint32_t kMsrLstar = 0xC0000082;
constexpr uint32_t kMsrCstar = 0xC0000083;
constexpr uint32_t kMsrSyscallMask = 0xC0000084;
constexpr uint32_t kMsrKernelGsBase = 0xC0000102;
constexpr uint64_t kMiscEnableFastStrings = 1;
// IA32_MTRR_DEF_TYPE: E (bit 11) enables MTRRs; type 6 = write-back. Without it Linux sees
// every page as uncacheable and boots far slower.
constexpr uint64_t kMtrrEnableWriteBack = (1u << 11) | 6;

// LAPIC register offsets and LVT delivery modes (Intel SDM vol. 3, 11.5.1).
constexpr size_t kLapicLvtLint0 = 0x350;
constexpr size_t kLapicLvtLint1 = 0x360;
constexpr uint32_t kDeliveryModeMask = 0x700;
constexpr uint32_t kDeliveryExtInt = 0x700;
constexpr uint32_t kDeliveryNmi = 0x400;

absl::Status SetBootMsrs(int vcpu_fd) {
  constexpr struct {
    uint32_t index;
    uint64_t value;
  } kBootMsrs[] = {
      {kMsrSysenterCs, 0},
      {kMsrSysenterEsp, 0},
      {kMsrSysenterEip, 0},
      {kMsrStar, 0},
      {kMsrLstar, 0},
      {kMsrCstar, 0},
      {kMsrSyscallMask, 0},
      {kMsrKernelGsBase, 0},
      {kMsrTsc, 0},
      {kMsrMiscEnable, kMiscEnableFastStrings},
      {kMsrMtrrDefType, kMtrrEnableWriteBack},
  };
  constexpr uint32_t kCount = sizeof(kBootMsrs) / sizeof(kBootMsrs[0]);
  kvm::KvmMsrs<kCount> msrs{};
  msrs.header.nmsrs = kCount;
  for (uint32_t i = 0; i < kCount; ++i) {
    msrs.entries[i].index = kBootMsrs[i].index;
    msrs.entries[i].data = kBootMsrs[i].value;
  }
  // KVM_SET_MSRS returns how many it set; fewer means one was refused.
  const int set = ::ioctl(vcpu_fd, kvm::kKvmSetMsrs, &msrs);
  if (set < 0) return absl::ErrnoToStatus(errno, "KVM_SET_MSRS");
  if (static_cast<uint32_t>(set) != kCount) {
    return absl::InternalError(
        absl::StrFormat("KVM_SET_MSRS: refused MSR %#x", kBootMsrs[set].index));
  }
  return absl::OkStatus();
}

void SetLvtDeliveryMode(kvm_lapic_state& lapic, size_t reg, uint32_t mode) {
  uint32_t v;
  std::memcpy(&v, lapic.regs + reg, 4);
  v = (v & ~kDeliveryModeMask) | mode;
  std::memcpy(lapic.regs + reg, &v, 4);
}

absl::Status SetLapicLints(int vcpu_fd) {
  kvm_lapic_state lapic{};
  if (::ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic) < 0)
    return absl::ErrnoToStatus(errno, "KVM_GET_LAPIC");
  SetLvtDeliveryMode(lapic, kLapicLvtLint0, kDeliveryExtInt);
  SetLvtDeliveryMode(lapic, kLapicLvtLint1, kDeliveryNmi);
  if (::ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic) < 0)
    return absl::ErrnoToStatus(errno, "KVM_SET_LAPIC");
  return absl::OkStatus();
}

absl::Status SetBootFpu(int vcpu_fd) {
  kvm_fpu fpu{};
  fpu.fcw = 0x37F;     // x87 default control word (FNINIT)
  fpu.mxcsr = 0x1F80;  // SSE default: all exceptions masked
  if (::ioctl(vcpu_fd, KVM_SET_FPU, &fpu) < 0) return absl::ErrnoToStatus(errno, "KVM_SET_FPU");
  return absl::OkStatus();
}

}  // namespace

absl::Status CreateInKernelIrqchip(const kvm::Vm& vm) {
  if (::ioctl(vm.fd(), KVM_SET_TSS_ADDR, kKvmTssAddr) < 0) {
    return absl::ErrnoToStatus(errno, "KVM_SET_TSS_ADDR");
  }
  uint64_t identity_map = kKvmIdentityMapAddr;
  if (::ioctl(vm.fd(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
    return absl::ErrnoToStatus(errno, "KVM_SET_IDENTITY_MAP_ADDR");
  }
  if (::ioctl(vm.fd(), KVM_CREATE_IRQCHIP) < 0)
    return absl::ErrnoToStatus(errno, "KVM_CREATE_IRQCHIP");
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 answered in the kernel
  if (::ioctl(vm.fd(), KVM_CREATE_PIT2, &pit) < 0)
    return absl::ErrnoToStatus(errno, "KVM_CREATE_PIT2");
  return absl::OkStatus();
}

absl::Status SetupBootVcpuState(int vcpu_fd) {
  PCIVMM_RETURN_IF_ERROR(SetBootMsrs(vcpu_fd));
  PCIVMM_RETURN_IF_ERROR(SetBootFpu(vcpu_fd));
  return SetLapicLints(vcpu_fd);
}

void KvmIrqLine::Set(bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi_;
  irq.level = level ? 1 : 0;
  if (::ioctl(vm_->fd(), KVM_IRQ_LINE, &irq) < 0) {
    PCIVMM_LOG_GUEST("KVM_IRQ_LINE gsi %d level %d: %s", gsi_, irq.level, std::strerror(errno));
  }
}

}  // namespace pcivmm::platform
