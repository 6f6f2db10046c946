#include "vmm/base/host_mapping.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_format.h"

namespace pcivmm::base {

namespace {

absl::Status CheckSize(const std::string& name, uint64_t size) {
  if (size != 0 && (size & 0xFFF) == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: size %#x must be a non-zero multiple of 4 KiB", name, size));
}

}  // namespace

absl::StatusOr<HostMapping> HostMapping::CreateMemfd(const std::string& name, uint64_t size) {
  if (absl::Status st = CheckSize(name, size); !st.ok()) return st;
  UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrFormat("memfd_create %s", name));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("ftruncate %s to %#x", name, size));
  }
  // Shared so writes land in the memfd (visible through every view); NORESERVE so untouched
  // pages cost nothing.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrFormat("mmap %s", name));
  return HostMapping(std::move(fd), static_cast<uint8_t*>(p), size);
}

absl::StatusOr<HostMapping> HostMapping::CreateAnonymous(const std::string& name, uint64_t size) {
  if (absl::Status st = CheckSize(name, size); !st.ok()) return st;
  // 2 MiB aligned: a transparent huge page needs an aligned 2 MiB of virtual addresses, and
  // KVM maps a guest 2 MiB page with one large nested page only when the host address and
  // the guest physical address agree modulo 2 MiB (guest RAM starts at GPA 0). Kernels
  // before 6.7 do not align large anonymous mappings themselves: map 2 MiB more, trim.
  constexpr uint64_t kHuge = 2ull << 20;
  const uint64_t padded = size + kHuge;
  void* p = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, absl::StrFormat("mmap %s", name));
  auto* const base = static_cast<uint8_t*>(p);
  const uint64_t head = (kHuge - reinterpret_cast<uintptr_t>(p) % kHuge) % kHuge;
  uint8_t* const aligned = base + head;
  if (head > 0) ::munmap(base, head);
  if (const uint64_t tail = padded - head - size; tail > 0) ::munmap(aligned + size, tail);
  // Transparent huge pages where the host allows them ("madvise" or "always"): KVM then maps
  // guest RAM with 2 MiB pages and the guest takes one nested page fault per 2 MiB, not per
  // 4 KiB. Advice only: a host with THP off still works.
  ::madvise(aligned, size, MADV_HUGEPAGE);
  return HostMapping(UniqueFd(), aligned, size);
}

HostMapping::HostMapping(HostMapping&& o) noexcept
    : fd_(std::move(o.fd_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

HostMapping& HostMapping::operator=(HostMapping&& o) noexcept {
  if (this != &o) {
    Release();
    fd_ = std::move(o.fd_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

HostMapping::~HostMapping() { Release(); }

void HostMapping::Release() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace pcivmm::base
