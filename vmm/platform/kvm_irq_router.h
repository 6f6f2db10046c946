// Interrupts from passthrough devices into the in-kernel irqchip: KVM GSI routing + irqfd.
#ifndef PCIVMM_VMM_PLATFORM_KVM_IRQ_ROUTER_H_
#define PCIVMM_VMM_PLATFORM_KVM_IRQ_ROUTER_H_

#include <linux/kvm.h>

#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "pci/vfio/interrupt_router.h"
#include "vmm/kvm/kvm.h"

namespace pcivmm::platform {

// KVM_SET_GSI_ROUTING replaces the whole table, so this class owns it: KVM's default routes
// (GSI 0..15 to the PICs and the IOAPIC, 16..23 to the IOAPIC) plus one MSI route per
// forwarded vector from GSI 24 up. A device's eventfd becomes a guest interrupt through
// KVM_IRQFD, in the kernel, without waking the VMM. Needs the in-kernel irqchip.
// Thread-safe.
class KvmIrqRouter : public vfio::InterruptRouter {
 public:
  static constexpr uint32_t kIoapicPins = 24;
  static constexpr uint32_t kPicPins = 16;

  explicit KvmIrqRouter(const kvm::Vm& vm) : vm_fd_(vm.fd()) {}

  absl::StatusOr<int> AddMsiRoute(int fd, uint64_t address, uint32_t data) override;
  absl::Status UpdateMsiRoute(int route, uint64_t address, uint32_t data) override;
  absl::Status RemoveMsiRoute(int route) override;
  absl::Status AddIntxRoute(int trigger, int resample, uint32_t gsi) override;
  absl::Status RemoveIntxRoute(int trigger, uint32_t gsi) override;

  // The table KVM_SET_GSI_ROUTING would get now (tests inspect it).
  std::vector<kvm_irq_routing_entry> Table() const;

 private:
  struct MsiRoute {
    int fd;
    uint64_t address;
    uint32_t data;
  };
  absl::Status Commit() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<kvm_irq_routing_entry> TableLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Irqfd(int fd, uint32_t gsi, uint32_t flags, int resample);

  const int vm_fd_;
  mutable absl::Mutex mu_;
  std::map<uint32_t, MsiRoute> msi_ ABSL_GUARDED_BY(mu_);  // by GSI
};

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_KVM_IRQ_ROUTER_H_
