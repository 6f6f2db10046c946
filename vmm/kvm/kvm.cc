#include "vmm/kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "absl/strings/str_format.h"

namespace pcivmm::kvm {

absl::StatusOr<std::unique_ptr<Kvm>> Kvm::Open(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::UnavailableError(
          absl::StrFormat("%s does not exist: this machine has no KVM; run through the nested lab "
                          "(./dev lab -- <command>)",
                          path));
    }
    return absl::ErrnoToStatus(err, absl::StrFormat("open %s", path));
  }
  const int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: KVM API version %d, need %d", path, version, KVM_API_VERSION));
  }
  const int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return absl::ErrnoToStatus(errno, "KVM_GET_VCPU_MMAP_SIZE");
  }
  KvmClass kind = ClassifyKvm(ReadKvmHostFacts({.device = path}));
  return std::unique_ptr<Kvm>(new Kvm(std::move(fd), mmap_size, std::move(kind)));
}

int Kvm::CheckExtension(int capability) const {
  const int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

absl::Status Kvm::RequireExtension(int capability, const char* name) const {
  if (CheckExtension(capability) > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrFormat("this KVM lacks %s, which pcivmm needs", name));
}

absl::StatusOr<std::unique_ptr<Vm>> Vm::Create(const Kvm& kvm) {
  base::UniqueFd fd(::ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "KVM_CREATE_VM");
  return std::unique_ptr<Vm>(new Vm(std::move(fd)));
}

absl::Status Vm::SetUserMemoryRegion(const kvm_userspace_memory_region& region) {
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrFormat("KVM_SET_USER_MEMORY_REGION slot %d gpa %#x size %#x", region.slot,
                               region.guest_phys_addr, region.memory_size));
  }
  return absl::OkStatus();
}

int Vm::CheckExtension(int capability) const {
  const int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
  return r < 0 ? 0 : r;
}

}  // namespace pcivmm::kvm
