#ifndef PCIVMM_VMM_BASE_HOST_MAPPING_H_
#define PCIVMM_VMM_BASE_HOST_MAPPING_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::base {

// A memfd and its shared read-write mapping in the VMM. Move-only; unmaps and closes on
// destruction. Used for guest RAM, BAR backing and the ECAM shadow: memfd-backed so the same
// pages can also be mapped elsewhere (a second view, another process), and MAP_NORESERVE so
// a huge region costs nothing until touched.
class HostMapping {
 public:
  static absl::StatusOr<HostMapping> CreateMemfd(const std::string& name, uint64_t size);
  // Private anonymous memory (fd() is -1), backed by transparent huge pages where the host
  // allows: guest RAM.
  static absl::StatusOr<HostMapping> CreateAnonymous(const std::string& name, uint64_t size);

  HostMapping(HostMapping&& o) noexcept;
  HostMapping& operator=(HostMapping&& o) noexcept;
  HostMapping(const HostMapping&) = delete;
  HostMapping& operator=(const HostMapping&) = delete;
  ~HostMapping();

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  absl::Span<uint8_t> span() const { return {data_, size_}; }

 private:
  HostMapping(UniqueFd fd, uint8_t* data, uint64_t size)
      : fd_(std::move(fd)), data_(data), size_(size) {}
  void Release();

  UniqueFd fd_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace pcivmm::base

#endif  // PCIVMM_VMM_BASE_HOST_MAPPING_H_
