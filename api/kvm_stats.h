// KVM's own statistics through the binary stats interface (KVM_GET_STATS_FD, Linux 5.14+).
#ifndef PCIVMM_API_KVM_STATS_H_
#define PCIVMM_API_KVM_STATS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::api {

// One statistic. Documentation/virt/kvm/api.rst, "KVM_GET_STATS_FD": "flags: ... the type
// of data (bits 0-3), the unit of data (bits 4-7), the base of the exponent (bits 8-11)".
struct KvmStatValue {
  enum class Type : uint8_t { kCumulative, kInstant, kPeak, kLinearHist, kLogHist, kOther };
  std::string name;
  Type type = Type::kOther;
  std::string unit;  // "", "bytes", "seconds", "cycles", "boolean"
  int exponent = 0;  // value * base^exponent is in `unit`
  bool base2 = false;
  std::vector<uint64_t> values;  // one for scalars, the buckets for histograms
};

// Reads one VM's or vCPU's stats file: the descriptors once, the data on every Read().
class KvmStatsReader {
 public:
  // ioctl(KVM_GET_STATS_FD) on a VM or vCPU fd; Unimplemented when the kernel lacks it.
  static absl::StatusOr<std::unique_ptr<KvmStatsReader>> Open(int kvm_fd);
  // Parses an already open stats file (tests pass a memfd with the same layout).
  static absl::StatusOr<std::unique_ptr<KvmStatsReader>> FromStatsFd(base::UniqueFd fd);

  absl::StatusOr<std::vector<KvmStatValue>> Read() const;
  const std::string& id() const { return id_; }
  size_t size() const { return descriptors_.size(); }

 private:
  struct Descriptor {
    KvmStatValue meta;  // values empty
    uint32_t offset;    // from the data block
    uint16_t count;     // u64 values
  };
  static Descriptor ParseDescriptor(const std::vector<char>& block, size_t at, uint32_t name_size);
  KvmStatsReader(base::UniqueFd fd, std::string id, std::vector<Descriptor> d, uint32_t data_offset,
                 size_t data_bytes)
      : fd_(std::move(fd)),
        id_(std::move(id)),
        descriptors_(std::move(d)),
        data_offset_(data_offset),
        data_bytes_(data_bytes) {}

  base::UniqueFd fd_;
  std::string id_;
  std::vector<Descriptor> descriptors_;
  uint32_t data_offset_;
  size_t data_bytes_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_KVM_STATS_H_
