// Fixed-size stand-ins for the KVM uapi structs that end in a flexible array.
//
// Debian 12's <linux/kvm.h> (6.1 uapi) declares those arrays with __DECLARE_FLEX_ARRAY, which
// in C++ adds a 1-byte empty struct: sizeof(kvm_cpuid2) becomes 12 instead of 8, the entries
// move to offset 12, and the ioctl numbers encode the wrong size (the kernel answers EINVAL).
// These structs have the kernel's layout, and the ioctl numbers are computed from them.
#ifndef PCIVMM_VMM_KVM_KVM_UAPI_H_
#define PCIVMM_VMM_KVM_KVM_UAPI_H_

#include <linux/kvm.h>

#include <cstdint>

namespace pcivmm::kvm {

struct KvmCpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
static_assert(sizeof(KvmCpuidHeader) == 8);

template <uint32_t N>
struct KvmCpuid {
  KvmCpuidHeader header;
  kvm_cpuid_entry2 entries[N];
};

struct KvmMsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(KvmMsrsHeader) == 8);

template <uint32_t N>
struct KvmMsrs {
  KvmMsrsHeader header;
  kvm_msr_entry entries[N];
};

struct KvmIrqRoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
static_assert(sizeof(KvmIrqRoutingHeader) == 8);

// unsigned long: the type of ioctl()'s request argument in glibc.
// NOLINTBEGIN(google-runtime-int)
inline constexpr unsigned long kKvmGetSupportedCpuid = _IOWR(KVMIO, 0x05, KvmCpuidHeader);
inline constexpr unsigned long kKvmSetCpuid2 = _IOW(KVMIO, 0x90, KvmCpuidHeader);
inline constexpr unsigned long kKvmGetMsrs = _IOWR(KVMIO, 0x88, KvmMsrsHeader);
inline constexpr unsigned long kKvmSetMsrs = _IOW(KVMIO, 0x89, KvmMsrsHeader);
inline constexpr unsigned long kKvmSetGsiRouting = _IOW(KVMIO, 0x6a, KvmIrqRoutingHeader);
// NOLINTEND(google-runtime-int)

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_KVM_UAPI_H_
