#include "pci/access/ecam_fast_path.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "pci/access/ecam_trap.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t kPage = 4096;

absl::StatusOr<base::HostMapping> AllOnes(const char* name, uint64_t size) {
  PCIVMM_ASSIGN_OR_RETURN(base::HostMapping m, base::HostMapping::CreateMemfd(name, size));
  std::memset(m.data(), 0xFF, m.size());
  return m;
}

uint64_t AllocatedBytes(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EcamFastPath>> EcamFastPath::Create(PciBus& bus,
                                                                   mmio::MemslotTable& slots,
                                                                   uint64_t window_base) {
  const uint64_t size = kEcamBytesPerBus * static_cast<uint64_t>(bus.bus_count());
  std::unique_ptr<EcamFastPath> f(new EcamFastPath(slots, window_base, size));
  PCIVMM_RETURN_IF_ERROR(f->MapWindow(bus));
  f->ComputeRuns(bus);
  return f;
}

EcamFastPath::~EcamFastPath() {
  Disable().IgnoreError();
  if (window_ != nullptr) ::munmap(window_, window_size_);
}

// Maps `size` bytes of `fd` at `fd_offset` over window offset `offset`, read-only. The
// window reservation outlives every mapping placed in it (both end in the destructor).
absl::Status EcamFastPath::MapAt(uint64_t offset, uint64_t size, int fd, uint64_t fd_offset) {
  void* p = ::mmap(window_ + offset, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
                   static_cast<off_t>(fd_offset));
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "mmap ECAM shadow page");
  return absl::OkStatus();
}

absl::Status EcamFastPath::MapWindow(const PciBus& bus) {
  // Reserve the whole window first so the fixed mappings below land in our own range.
  void* p =
      ::mmap(nullptr, window_size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return absl::ErrnoToStatus(errno, "reserve ECAM shadow window");
  window_ = static_cast<uint8_t*>(p);
  config_pages_ = &bus.config_pages();
  PCIVMM_ASSIGN_OR_RETURN(ones_page_, AllOnes("ecam-absent", kPage));
  for (uint16_t devfn = 0; devfn < kDevfnsPerBus; ++devfn) {
    const Bdf bdf{0, static_cast<uint8_t>(devfn >> 3), static_cast<uint8_t>(devfn & 7)};
    const bool present = bus.Find(bdf) != nullptr;
    PCIVMM_RETURN_IF_ERROR(MapAt(devfn * kPage, kPage,
                                 present ? config_pages_->fd() : ones_page_->fd(),
                                 present ? devfn * kPage : 0));
  }
  if (bus.bus_count() > 1) {
    PCIVMM_ASSIGN_OR_RETURN(ones_bus_, AllOnes("ecam-absent-bus", kEcamBytesPerBus));
    for (int b = 1; b < bus.bus_count(); ++b) {
      PCIVMM_RETURN_IF_ERROR(
          MapAt(static_cast<uint64_t>(b) * kEcamBytesPerBus, kEcamBytesPerBus, ones_bus_->fd(), 0));
    }
  }
  return absl::OkStatus();
}

void EcamFastPath::ComputeRuns(const PciBus& bus) {
  uint64_t run_start = 0;
  for (uint16_t devfn = 0; devfn < kDevfnsPerBus; ++devfn) {
    const PciFunction* f =
        bus.Find({0, static_cast<uint8_t>(devfn >> 3), static_cast<uint8_t>(devfn & 7)});
    if (f == nullptr || f->spec().ecam_fast_path) continue;
    const uint64_t hole = devfn * kPage;
    if (hole > run_start)
      runs_.push_back(*mmio::AddressRange::Make(base_ + run_start, hole - run_start));
    run_start = hole + kPage;
  }
  // Behind bridges, which functions a bus's pages show depends on the bus numbers the guest
  // programs: those buses trap (EcamConfigAccess routes them) rather than show stale pages.
  const uint64_t end = bus.has_bridges() ? kEcamBytesPerBus : window_size_;
  if (end > run_start)
    runs_.push_back(*mmio::AddressRange::Make(base_ + run_start, end - run_start));
}

absl::Status EcamFastPath::Enable() {
  absl::MutexLock lock(&mu_);
  if (!installed_.empty()) return absl::OkStatus();
  for (const mmio::AddressRange& r : runs_) {
    auto id = slots_.Install(r.base(), r.size(), window_ + (r.base() - base_), /*read_only=*/true);
    if (!id.ok()) {
      for (uint32_t s : installed_) slots_.Remove(s).IgnoreError();
      installed_.clear();
      return id.status();
    }
    installed_.push_back(*id);
  }
  return absl::OkStatus();
}

absl::Status EcamFastPath::Disable() {
  absl::MutexLock lock(&mu_);
  for (uint32_t s : installed_) PCIVMM_RETURN_IF_ERROR(slots_.Remove(s));
  installed_.clear();
  return absl::OkStatus();
}

bool EcamFastPath::enabled() const {
  absl::MutexLock lock(&mu_);
  return !installed_.empty();
}

uint64_t EcamFastPath::shadow_bytes() const {
  uint64_t n = AllocatedBytes(config_pages_->fd()) + AllocatedBytes(ones_page_->fd());
  if (ones_bus_) n += AllocatedBytes(ones_bus_->fd());
  return n;
}

}  // namespace pcivmm::pci
