// Owners of the /dev/kvm system fd and a VM fd.
#ifndef PCIVMM_VMM_KVM_KVM_H_
#define PCIVMM_VMM_KVM_KVM_H_

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "mmio/memslot_table.h"
#include "vmm/base/unique_fd.h"
#include "vmm/kvm/kvm_flavour.h"

namespace pcivmm::kvm {

// The /dev/kvm system fd.
class Kvm {
 public:
  // Opens `path`. A missing device is Unavailable with a hint to use the nested lab;
  // a wrong API version is FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<Kvm>> Open(const std::string& path = "/dev/kvm");

  // KVM_CHECK_EXTENSION on the system fd: 0 when absent.
  int CheckExtension(int capability) const;
  // FailedPrecondition naming `name` when the capability is missing.
  absl::Status RequireExtension(int capability, const char* name) const;
  int vcpu_mmap_size() const { return vcpu_mmap_size_; }
  int fd() const { return fd_.get(); }
  // Which KVM this is (hardware, PVM, ...), classified once when it was opened.
  const KvmClass& kind() const { return kind_; }

 private:
  Kvm(base::UniqueFd fd, int vcpu_mmap_size, KvmClass kind)
      : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size), kind_(std::move(kind)) {}
  base::UniqueFd fd_;
  int vcpu_mmap_size_;
  KvmClass kind_;
};

// A VM fd. Implements MemslotBackend with KVM_SET_USER_MEMORY_REGION.
class Vm : public mmio::MemslotBackend {
 public:
  static absl::StatusOr<std::unique_ptr<Vm>> Create(const Kvm& kvm);

  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& region) override;
  int CheckExtension(int capability) const;
  int fd() const { return fd_.get(); }

 private:
  explicit Vm(base::UniqueFd fd) : fd_(std::move(fd)) {}
  base::UniqueFd fd_;
};

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_KVM_H_
