#include "pci/vfio/vfio_device.h"

#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "mmio/address_range.h"
#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::vfio {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPage = 4096;

// The uapi structs end in flexible arrays; C++ (GCC) sizes them without the array, as the
// kernel does. The ioctl numbers carry no size (_IO), so only these layouts matter.
static_assert(sizeof(vfio_irq_set) == 20 && offsetof(vfio_irq_set, data) == 20);
static_assert(sizeof(vfio_region_info) == 32);
static_assert(sizeof(vfio_region_info_cap_sparse_mmap) == 16);
static_assert(sizeof(vfio_region_sparse_mmap_area) == 16);

bool IsHex(const std::string& s, size_t from, size_t len) {
  if (from + len > s.size()) return false;
  for (size_t i = from; i < from + len; ++i) {
    if (std::isxdigit(static_cast<unsigned char>(s[i])) == 0) return false;
  }
  return true;
}

std::string ReadSysfsLine(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

// The last component of a sysfs symlink's target ("vfio-pci", "12"), or "" when absent.
std::string LinkName(const fs::path& link) {
  std::error_code ec;
  const fs::path target = fs::read_symlink(link, ec);
  return ec ? "" : target.filename().string();
}

absl::Status OpenError(int err, const std::string& path, const std::string& enoent_hint) {
  if (err == ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s does not exist: %s", path, enoent_hint));
  }
  if (err == EACCES || err == EPERM) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: permission denied: run as root or give this user the VFIO nodes (DMA mapping also "
        "needs RLIMIT_MEMLOCK as large as guest RAM)",
        path));
  }
  if (err == EBUSY) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is busy: another process (a VMM?) has it open", path));
  }
  return absl::ErrnoToStatus(err, absl::StrFormat("open %s", path));
}

}  // namespace

absl::StatusOr<std::string> NormalizePciAddress(const std::string& bdf) {
  const std::string full = bdf.size() == 7 ? "0000:" + bdf : bdf;
  const bool shape = full.size() == 12 && IsHex(full, 0, 4) && full[4] == ':' &&
                     IsHex(full, 5, 2) && full[7] == ':' && IsHex(full, 8, 2) && full[10] == '.' &&
                     full[11] >= '0' && full[11] <= '7';
  if (!shape || std::stoi(full.substr(8, 2), nullptr, 16) > 31) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "vfio: '%s' is not a PCI address (DDDD:BB:DD.F or BB:DD.F, device <= 1f, function <= 7)",
        bdf));
  }
  std::string out = full;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

absl::StatusOr<int> CheckVfioBinding(const VfioPaths& paths, const std::string& bdf) {
  const fs::path dev = fs::path(paths.sysfs) / "bus/pci/devices" / bdf;
  std::error_code ec;
  if (!fs::exists(dev, ec)) {
    return absl::NotFoundError(absl::StrFormat(
        "vfio %s: no such PCI device on this host (%s is missing)", bdf, dev.string()));
  }
  const std::string ids =
      absl::StrFormat("%s:%s", ReadSysfsLine(dev / "vendor"), ReadSysfsLine(dev / "device"));
  const std::string bind =
      absl::StrFormat("echo vfio-pci > %s/driver_override; echo %s > %s/bus/pci/drivers_probe",
                      dev.string(), bdf, paths.sysfs);
  const std::string driver = LinkName(dev / "driver");
  if (driver.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s (%s) is not bound to any driver; bind it to vfio-pci: %s", bdf, ids, bind));
  }
  if (driver != "vfio-pci") {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s (%s) is bound to %s, not vfio-pci; unbind it (echo %s > %s/driver/unbind), "
        "then: %s",
        bdf, ids, driver, bdf, dev.string(), bind));
  }
  const std::string group = LinkName(dev / "iommu_group");
  if (group.empty() || group.find_first_not_of("0123456789") != std::string::npos) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio %s has no IOMMU group: the host runs without an IOMMU (enable VT-d/AMD-Vi, "
        "intel_iommu=on; in the lab: tests/lab/lab.sh --vfio-*); Debian's kernels have no VFIO "
        "no-IOMMU mode",
        bdf));
  }
  return std::stoi(group);
}

std::string GroupBlockers(const VfioPaths& paths, int group) {
  std::vector<std::string> out;
  const fs::path dir =
      fs::path(paths.sysfs) / "kernel/iommu_groups" / std::to_string(group) / "devices";
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string driver = LinkName(e.path() / "driver");
    if (driver == "vfio-pci" || driver.empty()) continue;
    out.push_back(absl::StrFormat("%s (driver %s)", e.path().filename().string(), driver));
  }
  std::sort(out.begin(), out.end());
  return out.empty() ? "none found in sysfs" : absl::StrJoin(out, ", ");
}

absl::StatusOr<std::unique_ptr<VfioContainer>> VfioContainer::Open(const VfioPaths& paths) {
  const std::string path = paths.dev + "/vfio";
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid())
    return OpenError(errno, path, "the vfio module is not loaded (modprobe vfio-pci)");
  const int version = ::ioctl(fd.get(), VFIO_GET_API_VERSION);
  if (version != VFIO_API_VERSION) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: VFIO API version %d, need %d", path, version, VFIO_API_VERSION));
  }
  if (::ioctl(fd.get(), VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: no type1v2 IOMMU backend (load vfio_iommu_type1; the host needs an IOMMU)", path));
  }
  return std::unique_ptr<VfioContainer>(new VfioContainer(std::move(fd), paths));
}

absl::StatusOr<int> VfioContainer::AttachGroup(int group) {
  absl::MutexLock lock(&mu_);
  if (auto it = groups_.find(group); it != groups_.end()) return it->second.get();
  const std::string path = absl::StrFormat("%s/%d", paths_.dev, group);
  base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return OpenError(errno, path, "is the device bound to vfio-pci?");
  vfio_group_status status{};
  status.argsz = sizeof(status);
  if (::ioctl(fd.get(), VFIO_GROUP_GET_STATUS, &status) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("VFIO_GROUP_GET_STATUS %s", path));
  }
  if ((status.flags & VFIO_GROUP_FLAGS_VIABLE) == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "IOMMU group %d is not viable: every device in it must be bound to vfio-pci (or to no "
        "driver); bound elsewhere: %s",
        group, GroupBlockers(paths_, group)));
  }
  int container = fd_.get();
  if (::ioctl(fd.get(), VFIO_GROUP_SET_CONTAINER, &container) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("VFIO_GROUP_SET_CONTAINER %s", path));
  }
  if (!iommu_set_ && ::ioctl(fd_.get(), VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0) {
    const int err = errno;
    if (err == EPERM) {
      return absl::FailedPreconditionError(
          "VFIO_SET_IOMMU: EPERM: the IOMMU has no interrupt remapping (enable it, or load "
          "vfio_iommu_type1 with allow_unsafe_interrupts=1)");
    }
    return absl::ErrnoToStatus(err, "VFIO_SET_IOMMU type1v2");
  }
  iommu_set_ = true;
  const int out = fd.get();
  groups_.emplace(group, std::move(fd));
  return out;
}

absl::Status VfioContainer::MapDma(uint64_t iova, void* host, uint64_t size) {
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof(map);
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = reinterpret_cast<uint64_t>(host);
  map.iova = iova;
  map.size = size;
  if (::ioctl(fd_.get(), VFIO_IOMMU_MAP_DMA, &map) < 0) {
    const int err = errno;
    if (err == ENOMEM) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("VFIO_IOMMU_MAP_DMA iova %#x size %#x: ENOMEM: pinning guest RAM exceeds "
                          "RLIMIT_MEMLOCK (ulimit -l) or host memory",
                          iova, size));
    }
    return absl::ErrnoToStatus(err,
                               absl::StrFormat("VFIO_IOMMU_MAP_DMA iova %#x size %#x", iova, size));
  }
  absl::MutexLock lock(&mu_);
  dma_[iova] = size;
  return absl::OkStatus();
}

absl::Status VfioContainer::UnmapDma(uint64_t iova, uint64_t size) {
  vfio_iommu_type1_dma_unmap unmap{};
  unmap.argsz = sizeof(unmap);
  unmap.iova = iova;
  unmap.size = size;
  if (::ioctl(fd_.get(), VFIO_IOMMU_UNMAP_DMA, &unmap) < 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrFormat("VFIO_IOMMU_UNMAP_DMA iova %#x size %#x", iova, size));
  }
  absl::MutexLock lock(&mu_);
  dma_.erase(iova);
  return absl::OkStatus();
}

uint64_t VfioContainer::dma_mapped_bytes() const {
  absl::MutexLock lock(&mu_);
  uint64_t n = 0;
  for (const auto& [iova, size] : dma_) n += size;
  return n;
}

absl::StatusOr<std::unique_ptr<VfioDevice>> VfioDevice::Open(VfioContainer& container,
                                                             const std::string& bdf) {
  PCIVMM_ASSIGN_OR_RETURN(std::string name, NormalizePciAddress(bdf));
  PCIVMM_ASSIGN_OR_RETURN(const int group, CheckVfioBinding(container.paths(), name));
  PCIVMM_ASSIGN_OR_RETURN(const int group_fd, container.AttachGroup(group));
  base::UniqueFd fd(::ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, name.c_str()));
  if (!fd.valid()) {
    return absl::ErrnoToStatus(
        errno, absl::StrFormat("VFIO_GROUP_GET_DEVICE_FD %s (group %d)", name, group));
  }
  std::unique_ptr<VfioDevice> d(new VfioDevice(std::move(name), group, std::move(fd)));
  PCIVMM_RETURN_IF_ERROR(d->QueryInfo());
  return d;
}

VfioDevice::~VfioDevice() {
  for (RegionInfo& r : regions_) {
    for (MappedArea& a : r.region.mapped) ::munmap(a.host, a.size);
  }
}

absl::Status VfioDevice::QueryInfo() {
  vfio_device_info info{};
  info.argsz = sizeof(info);
  if (::ioctl(fd_.get(), VFIO_DEVICE_GET_INFO, &info) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("VFIO_DEVICE_GET_INFO %s", name_));
  }
  if ((info.flags & VFIO_DEVICE_FLAGS_PCI) == 0 || info.num_regions < kRegionCount) {
    return absl::FailedPreconditionError(
        absl::StrFormat("vfio %s: not a vfio-pci device (flags %#x, %d regions)", name_, info.flags,
                        info.num_regions));
  }
  resettable_ = (info.flags & VFIO_DEVICE_FLAGS_RESET) != 0;
  for (int i = 0; i < kRegionCount; ++i) PCIVMM_RETURN_IF_ERROR(QueryRegion(i));
  for (uint32_t i = 0; i < irq_counts_.size() && i < info.num_irqs; ++i) {
    vfio_irq_info irq{};
    irq.argsz = sizeof(irq);
    irq.index = i;
    if (::ioctl(fd_.get(), VFIO_DEVICE_GET_IRQ_INFO, &irq) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrFormat("VFIO_DEVICE_GET_IRQ_INFO %s", name_));
    }
    irq_counts_[i] = (irq.flags & VFIO_IRQ_INFO_EVENTFD) != 0 ? irq.count : 0;
  }
  return absl::OkStatus();
}

// VFIO_DEVICE_GET_REGION_INFO, asked again with a bigger buffer when the kernel has
// capabilities to report (argsz grows); then the sparse-mmap capability, if any.
absl::Status VfioDevice::QueryRegion(int index) {
  std::vector<uint64_t> buf(sizeof(vfio_region_info) / 8);
  for (int attempt = 0; attempt < 2; ++attempt) {
    // buf is 8-byte aligned and at least sizeof(vfio_region_info) bytes.
    auto* info = reinterpret_cast<vfio_region_info*>(buf.data());
    info->argsz = static_cast<uint32_t>(buf.size() * 8);
    info->index = static_cast<uint32_t>(index);
    if (::ioctl(fd_.get(), VFIO_DEVICE_GET_REGION_INFO, info) < 0) {
      return absl::ErrnoToStatus(
          errno, absl::StrFormat("VFIO_DEVICE_GET_REGION_INFO %s region %d", name_, index));
    }
    if (info->argsz <= buf.size() * 8) break;
    buf.resize((info->argsz + 7) / 8);
  }
  const auto* info = reinterpret_cast<const vfio_region_info*>(buf.data());
  RegionInfo& r = regions_[static_cast<size_t>(index)];
  r.region.size = info->size;
  r.region.readable = (info->flags & VFIO_REGION_INFO_FLAG_READ) != 0;
  r.region.writable = (info->flags & VFIO_REGION_INFO_FLAG_WRITE) != 0;
  r.fd_offset = info->offset;
  if ((info->flags & VFIO_REGION_INFO_FLAG_MMAP) == 0 || index >= kRegionRom)
    return absl::OkStatus();
  r.areas = {{0, info->size}};
  const size_t bytes = std::min<size_t>(info->argsz, buf.size() * 8);
  const auto* raw = reinterpret_cast<const uint8_t*>(buf.data());
  uint32_t at = (info->flags & VFIO_REGION_INFO_FLAG_CAPS) != 0 ? info->cap_offset : 0;
  for (int hops = 0; at != 0 && at + sizeof(vfio_info_cap_header) <= bytes && hops < 16; ++hops) {
    vfio_info_cap_header header{};
    std::memcpy(&header, raw + at, sizeof(header));
    if (header.id == VFIO_REGION_INFO_CAP_SPARSE_MMAP &&
        at + sizeof(vfio_region_info_cap_sparse_mmap) <= bytes) {
      vfio_region_info_cap_sparse_mmap sparse{};
      std::memcpy(&sparse, raw + at, sizeof(sparse));
      r.areas.clear();
      const size_t first = at + sizeof(sparse);
      constexpr size_t kArea = sizeof(vfio_region_sparse_mmap_area);
      for (size_t i = 0; i < sparse.nr_areas && first + (i + 1) * kArea <= bytes; ++i) {
        vfio_region_sparse_mmap_area area{};
        std::memcpy(&area, raw + first + i * kArea, sizeof(area));
        r.areas.emplace_back(area.offset, area.size);
      }
    }
    at = header.next;
  }
  MapAreas(r);
  return absl::OkStatus();
}

// Maps every page-aligned mmappable area; anything else (a BAR smaller than a page, an
// area the kernel refuses) stays on the read/write path.
void VfioDevice::MapAreas(RegionInfo& info) {
  for (const auto& [offset, size] : info.areas) {
    const auto end = mmio::CheckedAdd(offset, size);
    if (size == 0 || offset % kPage != 0 || size % kPage != 0 || !end || *end > info.region.size) {
      continue;
    }
    // MAP_SHARED of the device fd: the host kernel faults the BAR in on first touch and
    // zaps it whenever the device's memory decode is off. Unmapped in ~VfioDevice.
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(),
                     static_cast<off_t>(info.fd_offset + offset));
    if (p == MAP_FAILED) {
      base::LogLine("W", absl::StrFormat("vfio %s: mmap of region area [%#x, +%#x) failed (%s); it "
                                         "traps instead",
                                         name_, offset, size, std::strerror(errno)));
      continue;
    }
    info.region.mapped.push_back({offset, size, static_cast<uint8_t*>(p)});
  }
}

const DeviceRegion& VfioDevice::region(int index) const {
  static const DeviceRegion kNone;
  if (index < 0 || index >= kRegionCount) return kNone;
  return regions_[static_cast<size_t>(index)].region;
}

absl::Status VfioDevice::CheckAccess(int region, uint64_t offset, uint64_t len) const {
  const auto end = mmio::CheckedAdd(offset, len);
  if (region < 0 || region >= kRegionCount || !end ||
      *end > regions_[static_cast<size_t>(region)].region.size) {
    return absl::OutOfRangeError(
        absl::StrFormat("vfio %s: region %d [%#x, +%d) is outside it", name_, region, offset, len));
  }
  return absl::OkStatus();
}

absl::Status VfioDevice::Read(int region, uint64_t offset, absl::Span<uint8_t> data) const {
  PCIVMM_RETURN_IF_ERROR(CheckAccess(region, offset, data.size()));
  const uint64_t at = regions_[static_cast<size_t>(region)].fd_offset + offset;
  const ssize_t n = ::pread(fd_.get(), data.data(), data.size(), static_cast<off_t>(at));
  if (n != static_cast<ssize_t>(data.size())) {
    return absl::ErrnoToStatus(n < 0 ? errno : EIO, absl::StrFormat("vfio %s: read region %d +%#x",
                                                                    name_, region, offset));
  }
  return absl::OkStatus();
}

absl::Status VfioDevice::Write(int region, uint64_t offset, absl::Span<const uint8_t> data) const {
  PCIVMM_RETURN_IF_ERROR(CheckAccess(region, offset, data.size()));
  const uint64_t at = regions_[static_cast<size_t>(region)].fd_offset + offset;
  const ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(at));
  if (n != static_cast<ssize_t>(data.size())) {
    return absl::ErrnoToStatus(n < 0 ? errno : EIO, absl::StrFormat("vfio %s: write region %d +%#x",
                                                                    name_, region, offset));
  }
  return absl::OkStatus();
}

uint32_t VfioDevice::IrqCount(IrqKind kind) const {
  const auto i = static_cast<size_t>(kind);
  return i < irq_counts_.size() ? irq_counts_[i] : 0;
}

namespace {

// VFIO_DEVICE_SET_IRQS with `fds` as the eventfd payload (none: data type NONE).
absl::Status SetIrqs(int device_fd, const std::string& name, uint32_t index, uint32_t action,
                     absl::Span<const int> fds) {
  // uint32_t storage keeps the header and the s32 array 4-byte aligned.
  std::vector<uint32_t> buf((sizeof(vfio_irq_set) + fds.size() * sizeof(int32_t) + 3) / 4);
  auto* set = reinterpret_cast<vfio_irq_set*>(buf.data());
  set->argsz = static_cast<uint32_t>(buf.size() * 4);
  set->flags = action | (fds.empty() ? VFIO_IRQ_SET_DATA_NONE : VFIO_IRQ_SET_DATA_EVENTFD);
  set->index = index;
  set->start = 0;
  set->count = static_cast<uint32_t>(fds.size());
  if (!fds.empty()) std::memcpy(set->data, fds.data(), fds.size() * sizeof(int32_t));
  if (::ioctl(device_fd, VFIO_DEVICE_SET_IRQS, set) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("VFIO_DEVICE_SET_IRQS %s index %d count %d",
                                                      name, index, fds.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VfioDevice::SetIrqEventfds(IrqKind kind, absl::Span<const int> fds) {
  return SetIrqs(fd_.get(), name_, static_cast<uint32_t>(kind), VFIO_IRQ_SET_ACTION_TRIGGER, fds);
}

absl::Status VfioDevice::SetIntxUnmaskEventfd(int fd) {
  const int fds[1] = {fd};
  return SetIrqs(fd_.get(), name_, static_cast<uint32_t>(IrqKind::kIntx),
                 VFIO_IRQ_SET_ACTION_UNMASK, fds);
}

}  // namespace pcivmm::vfio
