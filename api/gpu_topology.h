// --gpus=N --topology=...: the GPU-like devices and the PCIe ports they sit behind, as a
// VmConfig's pci section (what a config file could say at length).
#ifndef PCIVMM_API_GPU_TOPOLOGY_H_
#define PCIVMM_API_GPU_TOPOLOGY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "pcivmm/v1/vm_config.pb.h"

namespace pcivmm::api {

// Replaces the devices and ports of `pci` with `gpus` GPU-like devices (BAR1 `bar1_gib`) in
// one of three topologies:
//   flat        on bus 0 at slots 1..N (no ports)
//   root-ports  each behind its own root port rpI at 00:(I+1).0, physical slot I+1
//   switch      behind one switch: root port rp0 at 00:01.0, its upstream port sw-up, and
//               downstream ports sw-downI at device I of the switch's bus, physical slot I+1
// InvalidArgument naming --topology for another name, or for more GPUs than fit.
absl::Status SetGpuTopology(uint32_t gpus, uint64_t bar1_gib, const std::string& topology,
                            v1::PciConfig* pci);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_GPU_TOPOLOGY_H_
