#include "api/kvm_stats.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace pcivmm::api {
namespace {

// api.rst: "struct kvm_stats_header { __u32 flags; __u32 name_size; __u32 num_desc;
// __u32 id_offset; __u32 desc_offset; __u32 data_offset; };"
struct Header {
  uint32_t flags, name_size, num_desc, id_offset, desc_offset, data_offset;
};
// "struct kvm_stats_desc { __u32 flags; __s16 exponent; __u16 size; __u32 offset;
// __u32 bucket_size; char name[]; };" -- name_size bytes of name follow each descriptor.
constexpr size_t kDescFixedBytes = 16;
constexpr uint32_t kMaxDescriptors = 4096;
constexpr uint32_t kMaxNameSize = 1024;

absl::Status ReadAt(int fd, void* buf, size_t len, uint64_t offset, const char* what) {
  const ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(offset));
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrFormat("read KVM stats %s", what));
  if (static_cast<size_t>(n) != len) {
    return absl::DataLossError(
        absl::StrFormat("KVM stats %s: %d of %d bytes at %d", what, n, len, offset));
  }
  return absl::OkStatus();
}

KvmStatValue::Type TypeOf(uint32_t flags) {
  switch (flags & 0xF) {
    case 0:
      return KvmStatValue::Type::kCumulative;
    case 1:
      return KvmStatValue::Type::kInstant;
    case 2:
      return KvmStatValue::Type::kPeak;
    case 3:
      return KvmStatValue::Type::kLinearHist;
    case 4:
      return KvmStatValue::Type::kLogHist;
    default:
      return KvmStatValue::Type::kOther;
  }
}

const char* UnitOf(uint32_t flags) {
  static constexpr const char* kUnits[] = {"", "bytes", "seconds", "cycles", "boolean"};
  const uint32_t unit = (flags >> 4) & 0xF;
  return unit < std::size(kUnits) ? kUnits[unit] : "?";
}

std::string NameAt(const std::vector<char>& block, size_t at, uint32_t name_size) {
  const char* p = block.data() + at;
  return std::string(p, strnlen(p, name_size));
}

}  // namespace

// One descriptor at `at` of the descriptor block: flags, exponent, size, offset, then the name.
KvmStatsReader::Descriptor KvmStatsReader::ParseDescriptor(const std::vector<char>& block,
                                                           size_t at, uint32_t name_size) {
  uint32_t flags = 0, offset = 0;
  int16_t exponent = 0;
  uint16_t count = 0;
  std::memcpy(&flags, block.data() + at, 4);
  std::memcpy(&exponent, block.data() + at + 4, 2);
  std::memcpy(&count, block.data() + at + 6, 2);
  std::memcpy(&offset, block.data() + at + 8, 4);
  KvmStatValue meta{NameAt(block, at + kDescFixedBytes, name_size),
                    TypeOf(flags),
                    UnitOf(flags),
                    exponent,
                    ((flags >> 8) & 0xF) == 1,
                    {}};
  return Descriptor{std::move(meta), offset, count};
}

absl::StatusOr<std::unique_ptr<KvmStatsReader>> KvmStatsReader::Open(int kvm_fd) {
  const int fd = ::ioctl(kvm_fd, KVM_GET_STATS_FD, nullptr);
  if (fd < 0) {
    return absl::UnimplementedError(absl::StrFormat(
        "KVM_GET_STATS_FD: %s (the kernel has no binary stats; 5.14+)", std::strerror(errno)));
  }
  return FromStatsFd(base::UniqueFd(fd));
}

absl::StatusOr<std::unique_ptr<KvmStatsReader>> KvmStatsReader::FromStatsFd(base::UniqueFd fd) {
  Header h{};
  if (absl::Status st = ReadAt(fd.get(), &h, sizeof(h), 0, "header"); !st.ok()) return st;
  if (h.num_desc > kMaxDescriptors || h.name_size == 0 || h.name_size > kMaxNameSize) {
    return absl::DataLossError(
        absl::StrFormat("KVM stats header: %d descriptors, name size %d", h.num_desc, h.name_size));
  }
  std::vector<char> id(h.name_size + 1, '\0');
  if (absl::Status st = ReadAt(fd.get(), id.data(), h.name_size, h.id_offset, "id"); !st.ok()) {
    return st;
  }
  const size_t stride = kDescFixedBytes + h.name_size;
  std::vector<char> block(stride * h.num_desc + 1, '\0');
  if (absl::Status st =
          ReadAt(fd.get(), block.data(), stride * h.num_desc, h.desc_offset, "descriptors");
      !st.ok()) {
    return st;
  }
  std::vector<Descriptor> descriptors;
  size_t data_bytes = 0;
  for (uint32_t i = 0; i < h.num_desc; ++i) {
    descriptors.push_back(ParseDescriptor(block, stride * i, h.name_size));
    const Descriptor& d = descriptors.back();
    data_bytes = std::max(data_bytes, size_t{d.offset} + size_t{d.count} * 8);
  }
  return std::unique_ptr<KvmStatsReader>(new KvmStatsReader(
      std::move(fd), std::string(id.data()), std::move(descriptors), h.data_offset, data_bytes));
}

absl::StatusOr<std::vector<KvmStatValue>> KvmStatsReader::Read() const {
  std::vector<uint8_t> data(data_bytes_);
  if (absl::Status st = ReadAt(fd_.get(), data.data(), data.size(), data_offset_, "data");
      !st.ok()) {
    return st;
  }
  std::vector<KvmStatValue> out;
  out.reserve(descriptors_.size());
  for (const Descriptor& d : descriptors_) {
    KvmStatValue v = d.meta;
    v.values.resize(d.count);
    std::memcpy(v.values.data(), data.data() + d.offset, size_t{d.count} * 8);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace pcivmm::api
