// Connects a passthrough device's interrupt eventfds to the guest's interrupt controller.
#ifndef PCIVMM_PCI_VFIO_INTERRUPT_ROUTER_H_
#define PCIVMM_PCI_VFIO_INTERRUPT_ROUTER_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace pcivmm::vfio {

// The machine implements it with KVM GSI routing and irqfds (vmm/platform/kvm_irq_router.h), so a
// signalled eventfd becomes a guest interrupt without passing through the VMM; tests fake it.
// Calls come from a function's config-write path (its write lock held): implementations
// serialise themselves and must not call back.
class InterruptRouter {
 public:
  virtual ~InterruptRouter() = default;
  // From now on a signal on `fd` delivers the MSI (address, data). Returns a route id.
  virtual absl::StatusOr<int> AddMsiRoute(int fd, uint64_t address, uint32_t data) = 0;
  virtual absl::Status UpdateMsiRoute(int route, uint64_t address, uint32_t data) = 0;
  virtual absl::Status RemoveMsiRoute(int route) = 0;
  // A level-triggered INTx line: a signal on `trigger` asserts `gsi`; the guest's EOI of it
  // deasserts it and signals `resample` (which unmasks the device's INTx on the host).
  virtual absl::Status AddIntxRoute(int trigger, int resample, uint32_t gsi) = 0;
  virtual absl::Status RemoveIntxRoute(int trigger, uint32_t gsi) = 0;
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_INTERRUPT_ROUTER_H_
