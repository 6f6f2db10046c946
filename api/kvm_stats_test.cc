#include "api/kvm_stats.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

// Builds a stats file in the layout of api.rst, "KVM_GET_STATS_FD", in a memfd.
class StatsFile {
 public:
  static constexpr uint32_t kNameSize = 48;
  struct Desc {
    uint32_t flags;
    int16_t exponent;
    uint16_t size;
    uint32_t offset;
    std::string name;
  };

  base::UniqueFd Build(const std::string& id, const std::vector<Desc>& descs,
                       const std::vector<uint64_t>& data, uint32_t num_desc_override = 0) {
    const uint32_t id_offset = 24, desc_offset = id_offset + kNameSize;
    const uint32_t data_offset =
        desc_offset + static_cast<uint32_t>(descs.size()) * (16 + kNameSize);
    std::vector<char> file(data_offset + data.size() * 8, '\0');
    const uint32_t header[6] = {
        0,
        kNameSize,
        num_desc_override ? num_desc_override : static_cast<uint32_t>(descs.size()),
        id_offset,
        desc_offset,
        data_offset};
    std::memcpy(file.data(), header, sizeof(header));
    std::memcpy(file.data() + id_offset, id.data(), id.size());
    for (size_t i = 0; i < descs.size(); ++i) {
      char* d = file.data() + desc_offset + i * (16 + kNameSize);
      std::memcpy(d, &descs[i].flags, 4);
      std::memcpy(d + 4, &descs[i].exponent, 2);
      std::memcpy(d + 6, &descs[i].size, 2);
      std::memcpy(d + 8, &descs[i].offset, 4);
      std::memcpy(d + 16, descs[i].name.data(), descs[i].name.size());
    }
    std::memcpy(file.data() + data_offset, data.data(), data.size() * 8);
    data_offset_ = data_offset;
    base::UniqueFd fd(::memfd_create("kvm-stats-test", MFD_CLOEXEC));
    EXPECT_EQ(::write(fd.get(), file.data(), file.size()), static_cast<ssize_t>(file.size()));
    return fd;
  }
  uint32_t data_offset() const { return data_offset_; }

 private:
  uint32_t data_offset_ = 0;
};

constexpr uint32_t kCumulative = 0, kInstantBytes = 1 | (1 << 4), kLogHistSeconds = 4 | (2 << 4);

TEST(KvmStatsTest, ParsesDescriptorsAndRereadsValues) {
  StatsFile f;
  base::UniqueFd fd = f.Build("kvm-1234/vcpu-0",
                              {{kCumulative, 0, 1, 0, "exits"},
                               {kInstantBytes, 0, 1, 8, "pages"},
                               {kLogHistSeconds, -9, 4, 16, "halt_wait_hist"}},
                              {42, 4096, 1, 2, 3, 4});
  const int raw = fd.get();
  auto reader = KvmStatsReader::FromStatsFd(std::move(fd));
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->id(), "kvm-1234/vcpu-0");
  auto values = (*reader)->Read();
  ASSERT_TRUE(values.ok());
  ASSERT_EQ(values->size(), 3u);
  EXPECT_EQ((*values)[0].name, "exits");
  EXPECT_EQ((*values)[0].type, KvmStatValue::Type::kCumulative);
  EXPECT_EQ((*values)[0].values, std::vector<uint64_t>{42});
  EXPECT_EQ((*values)[1].unit, "bytes");
  EXPECT_EQ((*values)[1].type, KvmStatValue::Type::kInstant);
  EXPECT_EQ((*values)[2].type, KvmStatValue::Type::kLogHist);
  EXPECT_EQ((*values)[2].unit, "seconds");
  EXPECT_EQ((*values)[2].exponent, -9);
  EXPECT_EQ((*values)[2].values, (std::vector<uint64_t>{1, 2, 3, 4}));
  const uint64_t now = 43;
  ASSERT_EQ(::pwrite(raw, &now, 8, f.data_offset()), 8);
  EXPECT_EQ((*(*reader)->Read())[0].values[0], 43u);
}

TEST(KvmStatsTest, AbsurdHeadersAndShortFilesAreDataLoss) {
  StatsFile f;
  auto huge = KvmStatsReader::FromStatsFd(f.Build("x", {{0, 0, 1, 0, "a"}}, {1}, 100000));
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kDataLoss);
  auto short_file = KvmStatsReader::FromStatsFd(f.Build("x", {{0, 0, 1, 0, "a"}}, {1}, 5));
  EXPECT_EQ(short_file.status().code(), absl::StatusCode::kDataLoss);
}

TEST(KvmStatsTest, AFileWithoutStatsFdSupportIsUnimplemented) {
  base::UniqueFd not_kvm(::memfd_create("not-kvm", MFD_CLOEXEC));
  EXPECT_EQ(KvmStatsReader::Open(not_kvm.get()).status().code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace pcivmm::api
