// A passthrough function's interrupts: the device's INTx and MSI signalled on eventfds that
// KVM turns into guest interrupts (irqfds), so neither wakes the VMM.
#ifndef PCIVMM_PCI_VFIO_PASSTHROUGH_INTERRUPTS_H_
#define PCIVMM_PCI_VFIO_PASSTHROUGH_INTERRUPTS_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "pci/pci_function.h"
#include "pci/vfio/interrupt_router.h"
#include "pci/vfio/passthrough_device.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::vfio {

// INTx goes to the GSI of the function's pin, with resample; MSI follows the guest's emulated
// capability at `msi_cap` (0: none). VFIO allows one type at a time: INTx is paused while
// MSI is on. Threads: Update and the destructor run under the function's write lock (or
// before the VM runs); msi_enabled() from any thread.
class PassthroughInterrupts {
 public:
  PassthroughInterrupts(PassthroughDevice& device, const pci::PciFunction& function,
                        uint8_t msi_cap, bool msi_64bit)
      : device_(device), function_(function), msi_cap_(msi_cap), msi_64bit_(msi_64bit) {}
  ~PassthroughInterrupts();
  PassthroughInterrupts(const PassthroughInterrupts&) = delete;
  PassthroughInterrupts& operator=(const PassthroughInterrupts&) = delete;

  // `router` (null: no interrupt controller; MSI enables are then only counted) must outlive
  // this. Routes the device's INTx to `intx_gsi` when given and the device has a pin.
  absl::Status Activate(InterruptRouter* router, std::optional<uint32_t> intx_gsi, bool has_pin);
  // After a guest write to the MSI capability: forwards, retargets or stops the vectors.
  void UpdateMsi();

  bool msi_enabled() const { return msi_on_.load(); }
  bool intx_routed() const { return intx_.gsi.has_value(); }
  uint64_t msi_enables() const { return msi_enables_.load(std::memory_order_relaxed); }

 private:
  struct Intx {
    std::optional<uint32_t> gsi;  // routed
    base::UniqueFd trigger;
    base::UniqueFd resample;
    bool on_device = false;  // VFIO signals `trigger` (off while MSI is on)
  };
  struct Msi {
    uint64_t address = 0;
    uint32_t data = 0;
    uint32_t vectors = 0;  // enabled vectors (0: off)
    std::vector<base::UniqueFd> fds;
    std::vector<int> routes;
  };

  absl::Status RouteIntx(uint32_t gsi);
  absl::Status SetDeviceIntx(bool on);
  absl::Status EnableMsi(uint32_t vectors);
  void DisableMsi();
  void RetargetMsi(uint64_t address, uint32_t data);

  PassthroughDevice& device_;
  const pci::PciFunction& function_;
  const uint8_t msi_cap_;
  const bool msi_64bit_;
  InterruptRouter* router_ = nullptr;
  Intx intx_;  // set up by Activate; on_device guarded by the function's write lock
  Msi msi_;    // guarded by the function's write lock
  std::atomic<bool> msi_on_{false};
  std::atomic<uint64_t> msi_enables_{0};
};

}  // namespace pcivmm::vfio

#endif  // PCIVMM_PCI_VFIO_PASSTHROUGH_INTERRUPTS_H_
