#include "pci/access/ecam_fast_path.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "absl/algorithm/container.h"
#include "absl/strings/str_format.h"
#include "pci/access/ecam_trap.h"
#include "vmm/base/log.h"
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
  bus.SetRoutingObserver(f.get());
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

absl::Status EcamFastPath::MapWindow(PciBus& bus) {
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
  bus_ = &bus;
  if (bus.bus_count() == 1) return absl::OkStatus();
  PCIVMM_ASSIGN_OR_RETURN(ones_bus_, AllOnes("ecam-absent-bus", kEcamBytesPerBus));
  absl::MutexLock lock(&mu_);
  shown_.assign(static_cast<size_t>(bus.bus_count()), {});
  for (auto& pages : shown_) pages.fill(0);  // nothing mapped yet: differs from every state
  return MapBuses();
}

// Each bus beyond 0 shows the pages of the functions the bridges route it to now; only the
// buses whose functions changed are remapped. Runs on a trapped bus-number write: one route
// per devfn (PciBus::IndexAt), no search.
absl::Status EcamFastPath::MapBuses() {
  for (int b = 1; b < bus_->bus_count(); ++b) {
    std::array<uint32_t, kDevfnsPerBus> pages;
    for (uint16_t devfn = 0; devfn < kDevfnsPerBus; ++devfn) {
      pages[devfn] = bus_->IndexAt({static_cast<uint8_t>(b), static_cast<uint8_t>(devfn >> 3),
                                    static_cast<uint8_t>(devfn & 7)});
    }
    if (pages != shown_[static_cast<size_t>(b)]) PCIVMM_RETURN_IF_ERROR(MapBus(b, pages));
  }
  return absl::OkStatus();
}

absl::Status EcamFastPath::MapBus(int b, const std::array<uint32_t, kDevfnsPerBus>& pages) {
  const uint64_t at = static_cast<uint64_t>(b) * kEcamBytesPerBus;
  const bool empty =
      absl::c_all_of(pages, [](uint32_t p) { return p == ConfigStats::kNoFunction; });
  if (empty) {
    PCIVMM_RETURN_IF_ERROR(MapAt(at, kEcamBytesPerBus, ones_bus_->fd(), 0));
  } else {
    for (uint16_t devfn = 0; devfn < kDevfnsPerBus; ++devfn) {
      const uint32_t page = pages[devfn];
      const bool present = page != ConfigStats::kNoFunction;
      PCIVMM_RETURN_IF_ERROR(MapAt(at + devfn * kPage, kPage,
                                   present ? config_pages_->fd() : ones_page_->fd(),
                                   present ? uint64_t{page} * kPage : 0));
    }
  }
  shown_[static_cast<size_t>(b)] = pages;
  return absl::OkStatus();
}

void EcamFastPath::OnRoutingChanged() {
  absl::MutexLock lock(&mu_);
  if (absl::Status st = MapBuses(); !st.ok()) {
    PCIVMM_LOG_GUEST("ecam fast path: remapping after a bus-number write failed: %s",
                     st.ToString());
  }
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
  // A function behind a bridge that opts out would need its hole to follow the bus numbers:
  // then the buses beyond 0 trap (EcamConfigAccess routes them) instead.
  bool opt_out_below = false;
  for (const PciFunction* f : bus.functions()) {
    opt_out_below |= f->parent() != nullptr && !f->spec().ecam_fast_path;
  }
  const uint64_t end = opt_out_below ? kEcamBytesPerBus : window_size_;
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
