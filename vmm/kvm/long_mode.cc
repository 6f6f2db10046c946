#include "vmm/kvm/long_mode.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "vmm/base/status_macros.h"
#include "vmm/kvm/kvm_uapi.h"

namespace pcivmm::kvm {
namespace {

// x86 control-register and page-table bits (Intel SDM vol. 3, 2.5 and 4.5).
constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Mp = 1ull << 1;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Wp = 1ull << 16;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kPtePresent = 1ull << 0;
constexpr uint64_t kPteWritable = 1ull << 1;
constexpr uint64_t kPtePageSize = 1ull << 7;

// Linux boot.rst, 64-bit boot protocol: "a GDT must be loaded with the descriptors for
// selectors __BOOT_CS(0x10) and __BOOT_DS(0x18); both descriptors must be 4G flat segment".
// Test guests use the same GDT. Entries: null, unused, 64-bit code (L=1), data.
constexpr uint16_t kCodeSelector = 0x10;
constexpr uint16_t kDataSelector = 0x18;
constexpr uint64_t kGdt[] = {0, 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF};

void PutU64(absl::Span<uint8_t> page, size_t index, uint64_t value) {
  std::memcpy(page.data() + index * 8, &value, 8);
}

kvm_segment FlatSegment(uint16_t selector, uint8_t type, bool code) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xFFFFFFFF;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.s = 1;
  s.g = 1;
  s.l = code ? 1 : 0;
  s.db = code ? 0 : 1;
  return s;
}

}  // namespace

absl::Status WriteBootTables(const GuestMemory& memory) {
  PCIVMM_RETURN_IF_ERROR(memory.Write(
      kBootGdtAddr, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kGdt), sizeof(kGdt))));
  PCIVMM_ASSIGN_OR_RETURN(auto pml4, memory.Translate(kBootPml4Addr, 4096));
  PCIVMM_ASSIGN_OR_RETURN(auto pdpt, memory.Translate(kBootPdptAddr, 4096));
  PCIVMM_ASSIGN_OR_RETURN(auto pd, memory.Translate(kBootPdAddr, uint64_t{4} * 4096));
  std::memset(pml4.data(), 0, 4096);
  std::memset(pdpt.data(), 0, 4096);
  PutU64(pml4, 0, kBootPdptAddr | kPtePresent | kPteWritable);
  constexpr uint64_t k2M = 2ull << 20;
  for (size_t i = 0; i < 4; ++i) {
    PutU64(pdpt, i, (kBootPdAddr + i * 4096) | kPtePresent | kPteWritable);
  }
  // Above 4 GiB (where 64-bit BARs live): 1 GiB pages up to 512 GiB.
  for (size_t i = 4; i < 512; ++i) {
    PutU64(pdpt, i, (i << 30) | kPtePresent | kPteWritable | kPtePageSize);
  }
  for (size_t i = 0; i < size_t{4} * 512; ++i) {
    PutU64(pd, i, (i * k2M) | kPtePresent | kPteWritable | kPtePageSize);
  }
  return absl::OkStatus();
}

absl::Status EnterLongMode(int vcpu_fd, const LongModeEntry& entry) {
  kvm_sregs sregs{};
  if (::ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
    return absl::ErrnoToStatus(errno, "KVM_GET_SREGS");
  sregs.cs = FlatSegment(kCodeSelector, /*type=execute/read, accessed*/ 11, true);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss =
      FlatSegment(kDataSelector, /*type=read/write, accessed*/ 3, false);
  sregs.gdt.base = kBootGdtAddr;
  sregs.gdt.limit = sizeof(kGdt) - 1;
  sregs.cr3 = kBootPml4Addr;
  sregs.cr4 = kCr4Pae;
  sregs.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Pg;
  sregs.efer = kEferLme | kEferLma;
  if (::ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
    return absl::ErrnoToStatus(errno, "KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = entry.rip;
  regs.rsp = entry.rsp;
  regs.rdi = entry.arg0;
  regs.rsi = entry.arg1;
  regs.rflags = 0x2;  // bit 1 is reserved and must be set
  if (::ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0) return absl::ErrnoToStatus(errno, "KVM_SET_REGS");
  return absl::OkStatus();
}

namespace {

constexpr uint32_t kMaxCpuidEntries = 256;
using CpuidTable = KvmCpuid<kMaxCpuidEntries>;

absl::StatusOr<std::unique_ptr<CpuidTable>> SupportedCpuid(const Kvm& kvm) {
  auto cpuid = std::make_unique<CpuidTable>();
  cpuid->header.nent = kMaxCpuidEntries;
  if (::ioctl(kvm.fd(), kKvmGetSupportedCpuid, cpuid.get()) < 0) {
    return absl::ErrnoToStatus(errno, "KVM_GET_SUPPORTED_CPUID");
  }
  return cpuid;
}

}  // namespace

absl::StatusOr<int> GuestPhysBits(const Kvm& kvm) {
  PCIVMM_ASSIGN_OR_RETURN(auto cpuid, SupportedCpuid(kvm));
  for (uint32_t i = 0; i < cpuid->header.nent && i < kMaxCpuidEntries; ++i) {
    if (cpuid->entries[i].function == 0x80000008) {
      return static_cast<int>(cpuid->entries[i].eax & 0xFF);
    }
  }
  return 36;  // the architectural minimum when the leaf is missing
}

namespace {

// CPUID.1:ECX[31] says "running under a hypervisor"; CPUID.1:EBX[31:24] is the initial
// APIC ID and CPUID.0BH/1FH:EDX the x2APIC ID (Intel SDM vol. 2A, CPUID), here the vCPU index.
// CPUID.1:ECX[24] (TSC-deadline timer) is not in KVM_GET_SUPPORTED_CPUID; KVM emulates it in
// the in-kernel LAPIC when KVM_CAP_TSC_DEADLINE_TIMER says so. Without it Linux calibrates
// the LAPIC timer against the PIT at boot.
void PersonalizeCpuid(kvm_cpuid_entry2& e, uint32_t apic_id, bool tsc_deadline) {
  constexpr uint32_t kHypervisorBit = 1u << 31;
  constexpr uint32_t kTscDeadlineBit = 1u << 24;
  if (e.function == 1) {
    e.ecx |= kHypervisorBit | (tsc_deadline ? kTscDeadlineBit : 0);
    e.ebx = (e.ebx & 0x00FFFFFF) | (apic_id << 24);
  }
  if (e.function == 0xB || e.function == 0x1F) e.edx = apic_id;
}

}  // namespace

absl::Status SetSupportedCpuid(const Kvm& kvm, int vcpu_fd, int vcpu_index) {
  PCIVMM_ASSIGN_OR_RETURN(auto cpuid, SupportedCpuid(kvm));
  const bool tsc_deadline = kvm.CheckExtension(KVM_CAP_TSC_DEADLINE_TIMER) > 0;
  for (uint32_t i = 0; i < cpuid->header.nent && i < kMaxCpuidEntries; ++i) {
    PersonalizeCpuid(cpuid->entries[i], static_cast<uint32_t>(vcpu_index), tsc_deadline);
  }
  if (::ioctl(vcpu_fd, kKvmSetCpuid2, cpuid.get()) < 0) {
    return absl::ErrnoToStatus(errno, "KVM_SET_CPUID2");
  }
  return absl::OkStatus();
}

}  // namespace pcivmm::kvm
