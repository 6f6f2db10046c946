#include "vmm/platform/kvm_irq_router.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/status_macros.h"
#include "vmm/kvm/kvm_uapi.h"

namespace pcivmm::platform {
namespace {

kvm_irq_routing_entry IrqchipEntry(uint32_t gsi, uint32_t chip, uint32_t pin) {
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_IRQCHIP;
  e.u.irqchip.irqchip = chip;
  e.u.irqchip.pin = pin;
  return e;
}

}  // namespace

std::vector<kvm_irq_routing_entry> KvmIrqRouter::Table() const {
  absl::MutexLock lock(&mu_);
  return TableLocked();
}

// What KVM installs by itself with KVM_CREATE_IRQCHIP (arch/x86/kvm/irq_comm.c,
// default_routing): GSI n to PIC pin n (master below 8, slave above) and IOAPIC pin n for
// n < 16, the IOAPIC alone for 16..23.
std::vector<kvm_irq_routing_entry> KvmIrqRouter::TableLocked() const {
  std::vector<kvm_irq_routing_entry> t;
  for (uint32_t gsi = 0; gsi < kIoapicPins; ++gsi) {
    if (gsi < kPicPins) {
      t.push_back(
          IrqchipEntry(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8));
    }
    t.push_back(IrqchipEntry(gsi, KVM_IRQCHIP_IOAPIC, gsi));
  }
  for (const auto& [gsi, r] : msi_) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.u.msi.address_lo = static_cast<uint32_t>(r.address);
    e.u.msi.address_hi = static_cast<uint32_t>(r.address >> 32);
    e.u.msi.data = r.data;
    t.push_back(e);
  }
  return t;
}

absl::Status KvmIrqRouter::Commit() {
  const std::vector<kvm_irq_routing_entry> t = TableLocked();
  // Header then entries, as the kernel reads them; uint64_t storage keeps the entries'
  // 8-byte alignment.
  const size_t bytes = sizeof(kvm::KvmIrqRoutingHeader) + t.size() * sizeof(kvm_irq_routing_entry);
  std::vector<uint64_t> buf((bytes + 7) / 8);
  kvm::KvmIrqRoutingHeader header{static_cast<uint32_t>(t.size()), 0};
  std::memcpy(buf.data(), &header, sizeof(header));
  std::memcpy(reinterpret_cast<uint8_t*>(buf.data()) + sizeof(header), t.data(),
              t.size() * sizeof(kvm_irq_routing_entry));
  if (::ioctl(vm_fd_, kvm::kKvmSetGsiRouting, buf.data()) < 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrFormat("KVM_SET_GSI_ROUTING (%d entries)", t.size()));
  }
  return absl::OkStatus();
}

absl::Status KvmIrqRouter::Irqfd(int fd, uint32_t gsi, uint32_t flags, int resample) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(fd);
  irqfd.gsi = gsi;
  irqfd.flags = flags;
  irqfd.resamplefd = static_cast<uint32_t>(resample);
  if (::ioctl(vm_fd_, KVM_IRQFD, &irqfd) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrFormat("KVM_IRQFD gsi %d flags %#x", gsi, flags));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> KvmIrqRouter::AddMsiRoute(int fd, uint64_t address, uint32_t data) {
  absl::MutexLock lock(&mu_);
  uint32_t gsi = kIoapicPins;
  while (msi_.contains(gsi)) ++gsi;
  msi_[gsi] = {fd, address, data};
  if (absl::Status st = Commit(); !st.ok()) {
    msi_.erase(gsi);
    return st;
  }
  if (absl::Status st = Irqfd(fd, gsi, 0, 0); !st.ok()) {
    msi_.erase(gsi);
    Commit().IgnoreError();
    return st;
  }
  return static_cast<int>(gsi);
}

absl::Status KvmIrqRouter::UpdateMsiRoute(int route, uint64_t address, uint32_t data) {
  absl::MutexLock lock(&mu_);
  auto it = msi_.find(static_cast<uint32_t>(route));
  if (it == msi_.end()) return absl::NotFoundError(absl::StrFormat("no MSI route %d", route));
  it->second.address = address;
  it->second.data = data;
  return Commit();
}

absl::Status KvmIrqRouter::RemoveMsiRoute(int route) {
  absl::MutexLock lock(&mu_);
  auto it = msi_.find(static_cast<uint32_t>(route));
  if (it == msi_.end()) return absl::NotFoundError(absl::StrFormat("no MSI route %d", route));
  absl::Status st = Irqfd(it->second.fd, it->first, KVM_IRQFD_FLAG_DEASSIGN, 0);
  msi_.erase(it);
  PCIVMM_RETURN_IF_ERROR(Commit());
  return st;
}

// KVM_IRQFD_FLAG_RESAMPLE: the irqfd asserts the GSI level-triggered; the guest's EOI
// deasserts it and signals `resample`, which VFIO uses to unmask the device's INTx.
absl::Status KvmIrqRouter::AddIntxRoute(int trigger, int resample, uint32_t gsi) {
  if (gsi >= kIoapicPins) {
    return absl::InvalidArgumentError(absl::StrFormat("INTx gsi %d: not an IOAPIC pin", gsi));
  }
  return Irqfd(trigger, gsi, KVM_IRQFD_FLAG_RESAMPLE, resample);
}

absl::Status KvmIrqRouter::RemoveIntxRoute(int trigger, uint32_t gsi) {
  return Irqfd(trigger, gsi, KVM_IRQFD_FLAG_DEASSIGN, 0);
}

}  // namespace pcivmm::platform
