// An in-memory PassthroughDevice for unit tests and fuzzing: a config space, BAR regions in
// memfd-backed pages (so mapped areas are real, page-aligned host memory), and a log of
// every write and IRQ change.
#ifndef PCIVMM_PCI_VFIO_FAKE_PASSTHROUGH_DEVICE_H_
#define PCIVMM_PCI_VFIO_FAKE_PASSTHROUGH_DEVICE_H_

#include <array>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "pci/vfio/passthrough_device.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm::vfio::testing {

class FakePassthroughDevice : public PassthroughDevice {
 public:
  struct ConfigWrite {
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };

  explicit FakePassthroughDevice(uint64_t config_size = 256) {
    regions_[At(kRegionConfig)] = {config_size, true, true, {}};
  }

  // Config space set-up (little-endian).
  void SetConfig(uint16_t offset, int width, uint32_t value) {
    for (int i = 0; i < width; ++i)
      config_[At(offset + i)] = static_cast<uint8_t>(value >> (8 * i));
  }
  uint32_t Config(uint16_t offset, int width) const {
    uint32_t v = 0;
    for (int i = 0; i < width; ++i) v |= uint32_t{config_[At(offset + i)]} << (8 * i);
    return v;
  }
  // A BAR region of `size` bytes; `mappable`: one mapped area over all of it.
  void AddBar(int index, uint64_t size, bool mappable) {
    auto m = base::HostMapping::CreateMemfd(absl::StrFormat("fake-bar%d", index),
                                            std::max(size, 4096ul));
    bars_[At(index)].emplace(std::move(*m));
    regions_[At(index)] = {size, true, true, {}};
    if (mappable) regions_[At(index)].mapped.push_back({0, size, bars_[At(index)]->data()});
  }
  uint8_t* bar(int index) { return bars_[At(index)]->data(); }
  void FailReads(bool fail) { fail_reads_ = fail; }

  const std::string& name() const override { return name_; }
  const DeviceRegion& region(int index) const override { return regions_[At(index)]; }
  absl::Status Read(int region, uint64_t offset, absl::Span<uint8_t> data) const override {
    if (fail_reads_) return absl::InternalError("fake read failure");
    if (offset + data.size() > regions_[At(region)].size) return absl::OutOfRangeError("outside");
    const uint8_t* src = region == kRegionConfig ? config_.data() : bars_[At(region)]->data();
    std::memcpy(data.data(), src + offset, data.size());
    return absl::OkStatus();
  }
  absl::Status Write(int region, uint64_t offset, absl::Span<const uint8_t> data) const override {
    if (offset + data.size() > regions_[At(region)].size) return absl::OutOfRangeError("outside");
    uint8_t* dst = region == kRegionConfig ? config_.data() : bars_[At(region)]->data();
    std::memcpy(dst + offset, data.data(), data.size());
    if (region == kRegionConfig) config_writes_.push_back({offset, {data.begin(), data.end()}});
    return absl::OkStatus();
  }
  uint32_t IrqCount(IrqKind kind) const override { return irq_counts_[static_cast<size_t>(kind)]; }
  absl::Status SetIrqEventfds(IrqKind kind, absl::Span<const int> fds) override {
    irq_fds_[static_cast<size_t>(kind)].assign(fds.begin(), fds.end());
    ++irq_changes_;
    return absl::OkStatus();
  }
  absl::Status SetIntxUnmaskEventfd(int fd) override {
    unmask_fd_ = fd;
    return absl::OkStatus();
  }

  static size_t At(int i) { return static_cast<size_t>(i); }

  std::array<uint32_t, 3> irq_counts_{};
  std::array<std::vector<int>, 3> irq_fds_{};
  int irq_changes_ = 0;
  int unmask_fd_ = -1;
  mutable std::vector<ConfigWrite> config_writes_;

 private:
  std::string name_ = "0000:00:04.0";
  mutable std::array<uint8_t, 4096> config_{};
  std::array<DeviceRegion, kRegionCount> regions_{};
  std::array<std::optional<base::HostMapping>, 6> bars_{};
  bool fail_reads_ = false;
};

}  // namespace pcivmm::vfio::testing

#endif  // PCIVMM_PCI_VFIO_FAKE_PASSTHROUGH_DEVICE_H_
