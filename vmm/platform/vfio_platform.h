// Real passthrough devices in a machine: opens them through VFIO, puts their functions on the
// PCI bus, maps guest RAM for their DMA and wires their BARs and interrupts.
#ifndef PCIVMM_VMM_PLATFORM_VFIO_PLATFORM_H_
#define PCIVMM_VMM_PLATFORM_VFIO_PLATFORM_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pci/bar_mapper.h"
#include "pci/pci_bus.h"
#include "pci/vfio/passthrough_function.h"
#include "pci/vfio/vfio_device.h"
#include "vmm/platform/kvm_irq_router.h"
#include "vmm/platform/machine.h"

namespace pcivmm::platform {

struct VfioDeviceConfig {
  std::string host_address;  // "0000:00:04.0" or "00:04.0", bound to vfio-pci
  int slot = 0;              // guest device number; 0: the next free one
  std::string name{};        // default "vfio-<host address>"
  bool forward_msi = true;
  bool config_fast_path = false;  // see PassthroughOptions
  bool mmap_bars = true;          // see PassthroughOptions
};

class VfioPlatform {
 public:
  struct Timings {
    uint64_t open_ns = 0;     // container, groups and devices, region and IRQ info, mmaps
    uint64_t dma_map_ns = 0;  // VFIO_IOMMU_MAP_DMA of guest RAM
  };

  // Opens every device (one container for all) and adds its function to `bus`, before the
  // firmware assigns BARs. Nothing to do (and no VFIO needed) for an empty list.
  static absl::StatusOr<std::unique_ptr<VfioPlatform>> Open(
      const std::vector<VfioDeviceConfig>& devices, pci::PciBus& bus,
      const vfio::VfioPaths& paths = {});
  ~VfioPlatform();

  // After BAR assignment and before the VM runs: maps guest RAM for DMA (iova = guest
  // physical), routes interrupts (with an in-kernel irqchip), activates every function.
  absl::Status Activate(Machine& machine, pci::BarMapper& mapper);

  const std::vector<std::unique_ptr<vfio::PassthroughFunction>>& functions() const {
    return functions_;
  }
  vfio::VfioContainer* container() const { return container_.get(); }
  const Timings& timings() const { return timings_; }

 private:
  VfioPlatform() = default;

  // Destroyed in reverse: the functions (which use the devices and the router) first.
  std::unique_ptr<vfio::VfioContainer> container_;
  std::vector<std::unique_ptr<vfio::VfioDevice>> devices_;
  std::unique_ptr<KvmIrqRouter> router_;
  std::vector<std::unique_ptr<vfio::PassthroughFunction>> functions_;
  Timings timings_;
};

// A line per passthrough function: host address, guest BDF, counters and the real
// decode write's cost.
std::string FormatVfioDevices(const VfioPlatform& vfio);

}  // namespace pcivmm::platform

#endif  // PCIVMM_VMM_PLATFORM_VFIO_PLATFORM_H_
