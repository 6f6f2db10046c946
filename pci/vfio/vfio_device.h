// The VFIO backend: a container (type1v2 IOMMU), its groups, and vfio-pci devices.
#ifndef PCIVMM_PCI_VFIO_VFIO_DEVICE_H_
#define PCIVMM_PCI_VFIO_VFIO_DEVICE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "pci/vfio/passthrough_device.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::vfio {

// Where VFIO lives; tests point these at a fake tree.
struct VfioPaths {
  std::string sysfs = "/sys";
  std::string dev = "/dev/vfio";
};

// "0000:00:04.0" from "0000:00:04.0" or "00:04.0"; InvalidArgument otherwise.
absl::StatusOr<std::string> NormalizePciAddress(const std::string& bdf);

// The sysfs checks that turn the usual set-up mistakes into clear errors before any ioctl:
// NotFound (no such device), FailedPrecondition (not bound to vfio-pci, no IOMMU group).
// Returns the IOMMU group number.
absl::StatusOr<int> CheckVfioBinding(const VfioPaths& paths, const std::string& bdf);

// "0000:00:04.0 (driver e1000e), 0000:00:04.1 (no driver)": the devices of `group` not bound
// to vfio-pci, which is what makes a group non-viable.
std::string GroupBlockers(const VfioPaths& paths, int group);

// One VFIO container with the type1v2 IOMMU: the address space every attached group's
// devices DMA into. Guest RAM is mapped here at iova = guest physical address.
// Thread-safe.
class VfioContainer {
 public:
  static absl::StatusOr<std::unique_ptr<VfioContainer>> Open(const VfioPaths& paths = {});

  // Opens /dev/vfio/<group> and attaches it (once per group); the first group selects the
  // IOMMU. Returns the group fd, owned by the container.
  absl::StatusOr<int> AttachGroup(int group);
  // VFIO_IOMMU_MAP_DMA, readable and writable by the device. `host` stays mapped as long.
  absl::Status MapDma(uint64_t iova, void* host, uint64_t size);
  absl::Status UnmapDma(uint64_t iova, uint64_t size);
  uint64_t dma_mapped_bytes() const;

  int fd() const { return fd_.get(); }
  const VfioPaths& paths() const { return paths_; }

 private:
  VfioContainer(base::UniqueFd fd, VfioPaths paths)
      : fd_(std::move(fd)), paths_(std::move(paths)) {}

  base::UniqueFd fd_;
  const VfioPaths paths_;
  mutable absl::Mutex mu_;
  std::map<int, base::UniqueFd> groups_ ABSL_GUARDED_BY(mu_);
  bool iommu_set_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, uint64_t> dma_ ABSL_GUARDED_BY(mu_);  // iova -> size
};

// A vfio-pci device: its fd, region and IRQ information, and host mappings of every
// mmappable BAR area (made at open; faulted in by the host kernel on first touch).
class VfioDevice : public PassthroughDevice {
 public:
  // `bdf`: "0000:00:04.0" or "00:04.0". The container must outlive the device.
  static absl::StatusOr<std::unique_ptr<VfioDevice>> Open(VfioContainer& container,
                                                          const std::string& bdf);
  ~VfioDevice() override;
  VfioDevice(const VfioDevice&) = delete;
  VfioDevice& operator=(const VfioDevice&) = delete;

  const std::string& name() const override { return name_; }
  const DeviceRegion& region(int index) const override;
  absl::Status Read(int region, uint64_t offset, absl::Span<uint8_t> data) const override;
  absl::Status Write(int region, uint64_t offset, absl::Span<const uint8_t> data) const override;
  uint32_t IrqCount(IrqKind kind) const override;
  absl::Status SetIrqEventfds(IrqKind kind, absl::Span<const int> fds) override;
  absl::Status SetIntxUnmaskEventfd(int fd) override;

  int group() const { return group_; }
  int fd() const { return fd_.get(); }
  bool resettable() const { return resettable_; }

 private:
  struct RegionInfo {
    DeviceRegion region;
    uint64_t fd_offset = 0;                            // where the region starts in the device fd
    std::vector<std::pair<uint64_t, uint64_t>> areas;  // mmappable (offset, size)
  };
  VfioDevice(std::string name, int group, base::UniqueFd fd)
      : name_(std::move(name)), group_(group), fd_(std::move(fd)) {}
  absl::Status QueryInfo();
  absl::Status QueryRegion(int index);
  void MapAreas(RegionInfo& info);
  absl::Status CheckAccess(int region, uint64_t offset, uint64_t len) const;

  const std::string name_;
  const int group_;
  base::UniqueFd fd_;
  bool resettable_ = false;
  std::array<RegionInfo, kRegionCount> regions_{};
  std::array<uint32_t, 3> irq_counts_{};
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_VFIO_DEVICE_H_
