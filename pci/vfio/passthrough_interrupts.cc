#include "pci/vfio/passthrough_interrupts.h"

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>

#include "vmm/base/log.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::vfio {
namespace {

// PCI 3.0, 6.8.1.3, MSI Message Control: enable (bit 0), Multiple Message Enable (6:4).
constexpr uint16_t kMsiEnable = 0x0001;
constexpr uint16_t kMsiMultipleEnable = 0x0070;

}  // namespace

PassthroughInterrupts::~PassthroughInterrupts() {
  if (intx_.on_device) SetDeviceIntx(false).IgnoreError();
  if (intx_.gsi) router_->RemoveIntxRoute(intx_.trigger.get(), *intx_.gsi).IgnoreError();
  intx_.gsi.reset();  // so that DisableMsi does not turn INTx back on
  if (msi_.vectors != 0) DisableMsi();
}

absl::Status PassthroughInterrupts::Activate(InterruptRouter* router,
                                             std::optional<uint32_t> intx_gsi, bool has_pin) {
  router_ = router;
  if (router_ != nullptr && intx_gsi && has_pin && device_.IrqCount(IrqKind::kIntx) != 0) {
    return RouteIntx(*intx_gsi);
  }
  return absl::OkStatus();
}

// INTx: the device's line -> VFIO (which masks it as it fires) -> `trigger` -> KVM asserts
// the GSI; the guest's EOI -> KVM deasserts it and signals `resample` -> VFIO unmasks.
absl::Status PassthroughInterrupts::RouteIntx(uint32_t gsi) {
  intx_.trigger.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  intx_.resample.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!intx_.trigger.valid() || !intx_.resample.valid()) {
    return absl::ErrnoToStatus(errno, "eventfd for INTx");
  }
  PCIVMM_RETURN_IF_ERROR(router_->AddIntxRoute(intx_.trigger.get(), intx_.resample.get(), gsi));
  intx_.gsi = gsi;
  return SetDeviceIntx(true);
}

// VFIO allows one interrupt type at a time: INTx is switched off while MSI is on.
absl::Status PassthroughInterrupts::SetDeviceIntx(bool on) {
  if (!on) {
    intx_.on_device = false;
    return device_.SetIrqEventfds(IrqKind::kIntx, {});
  }
  const int fds[1] = {intx_.trigger.get()};
  PCIVMM_RETURN_IF_ERROR(device_.SetIrqEventfds(IrqKind::kIntx, fds));
  intx_.on_device = true;
  return device_.SetIntxUnmaskEventfd(intx_.resample.get());
}

// PCI 3.0, 6.8.1.3: "Multiple Message Enable ... the number of allocated vectors" (a power
// of two), and the function "is permitted to modify the low order bits of the message data"
// to pick one. Per-vector mask bits are emulated but not applied.
void PassthroughInterrupts::UpdateMsi() {
  const auto at = [this](int off) { return static_cast<uint16_t>(msi_cap_ + off); };
  const uint32_t control = function_.ReadEmulated(at(2), 2);
  uint64_t address = function_.ReadEmulated(at(4), 4);
  if (msi_64bit_) address |= uint64_t{function_.ReadEmulated(at(8), 4)} << 32;
  const uint32_t data = function_.ReadEmulated(at(msi_64bit_ ? 12 : 8), 2);
  const uint32_t wanted = 1u << ((control & kMsiMultipleEnable) >> 4);
  const uint32_t vectors =
      (control & kMsiEnable) != 0 ? std::min(wanted, device_.IrqCount(IrqKind::kMsi)) : 0;
  if (vectors != msi_.vectors) {
    if (msi_.vectors != 0) DisableMsi();
    msi_.address = address;
    msi_.data = data;
    if (vectors != 0) {
      if (absl::Status st = EnableMsi(vectors); !st.ok()) {
        PCIVMM_LOG_GUEST("vfio %s: MSI not forwarded: %s", device_.name(), st.ToString());
      }
    }
    return;
  }
  if (vectors == 0 || (address == msi_.address && data == msi_.data)) return;
  RetargetMsi(address, data);
}

void PassthroughInterrupts::RetargetMsi(uint64_t address, uint32_t data) {
  msi_.address = address;
  msi_.data = data;
  for (uint32_t i = 0; i < msi_.routes.size(); ++i) {
    const uint32_t d = (data & ~(msi_.vectors - 1)) | i;
    if (absl::Status st = router_->UpdateMsiRoute(msi_.routes[i], address, d); !st.ok()) {
      PCIVMM_LOG_GUEST("vfio %s: MSI route update: %s", device_.name(), st.ToString());
    }
  }
}

absl::Status PassthroughInterrupts::EnableMsi(uint32_t vectors) {
  msi_enables_.fetch_add(1, std::memory_order_relaxed);
  if (router_ == nullptr) {
    return absl::FailedPreconditionError("the machine has no interrupt controller");
  }
  std::vector<int> fds;
  for (uint32_t i = 0; i < vectors; ++i) {
    base::UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "eventfd");
    const uint32_t d = (msi_.data & ~(vectors - 1)) | i;
    auto route = router_->AddMsiRoute(fd.get(), msi_.address, d);
    fds.push_back(fd.get());
    msi_.fds.push_back(std::move(fd));
    if (!route.ok()) {
      DisableMsi();
      return route.status();
    }
    msi_.routes.push_back(*route);
  }
  msi_.vectors = vectors;
  if (intx_.on_device) SetDeviceIntx(false).IgnoreError();
  if (absl::Status st = device_.SetIrqEventfds(IrqKind::kMsi, fds); !st.ok()) {
    DisableMsi();
    return st;
  }
  msi_on_.store(true);
  return absl::OkStatus();
}

void PassthroughInterrupts::DisableMsi() {
  if (msi_.vectors != 0) device_.SetIrqEventfds(IrqKind::kMsi, {}).IgnoreError();
  for (int route : msi_.routes) router_->RemoveMsiRoute(route).IgnoreError();
  msi_.routes.clear();
  msi_.fds.clear();
  msi_.vectors = 0;
  msi_on_.store(false);
  if (intx_.gsi && !intx_.on_device) {
    if (absl::Status st = SetDeviceIntx(true); !st.ok()) {
      PCIVMM_LOG_GUEST("vfio %s: INTx not restored: %s", device_.name(), st.ToString());
    }
  }
}

}  // namespace pcivmm::vfio
