#include "api/gpu_topology.h"

#include "absl/strings/str_format.h"

namespace pcivmm::api {
namespace {

v1::PciDevice* AddGpu(v1::PciConfig* pci, uint32_t i, uint64_t bar1_gib) {
  v1::PciDevice* d = pci->add_devices();
  d->set_name(absl::StrFormat("gpu%d", i));
  d->set_model(v1::DEVICE_MODEL_GPU_LIKE);
  d->set_bar1_gib(bar1_gib);
  return d;
}

v1::PciePort* AddPort(v1::PciConfig* pci, std::string name, v1::PortKind kind, uint32_t slot,
                      std::string parent, uint32_t physical_slot) {
  v1::PciePort* p = pci->add_ports();
  p->set_name(std::move(name));
  p->set_kind(kind);
  p->set_slot(slot);
  p->set_parent(std::move(parent));
  p->set_physical_slot(physical_slot);
  return p;
}

}  // namespace

absl::Status SetGpuTopology(uint32_t gpus, uint64_t bar1_gib, const std::string& topology,
                            v1::PciConfig* pci) {
  // Bus 0 has devices 1..31 (0 is the host bridge); a switch's bus has devices 0..31.
  const uint32_t most = topology == "switch" ? 32 : 31;
  if (topology != "flat" && topology != "root-ports" && topology != "switch") {
    return absl::InvalidArgumentError(
        absl::StrFormat("--topology: '%s' is not flat, root-ports or switch", topology));
  }
  if (gpus > most) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--topology: %s holds at most %d GPUs, not %d", topology, most, gpus));
  }
  pci->clear_devices();
  pci->clear_ports();
  if (topology == "switch" && gpus > 0) {
    AddPort(pci, "rp0", v1::PORT_KIND_ROOT_PORT, 1, "", 0);
    AddPort(pci, "sw-up", v1::PORT_KIND_SWITCH_UPSTREAM, 0, "rp0", 0);
  }
  for (uint32_t i = 0; i < gpus; ++i) {
    v1::PciDevice* d = AddGpu(pci, i, bar1_gib);
    if (topology == "flat") {
      d->set_slot(i + 1);
    } else if (topology == "root-ports") {
      const std::string port = absl::StrFormat("rp%d", i);
      AddPort(pci, port, v1::PORT_KIND_ROOT_PORT, i + 1, "", i + 1);
      d->set_port(port);
    } else {
      const std::string port = absl::StrFormat("sw-down%d", i);
      AddPort(pci, port, v1::PORT_KIND_SWITCH_DOWNSTREAM, i, "sw-up", i + 1);
      d->set_port(port);
    }
  }
  return absl::OkStatus();
}

}  // namespace pcivmm::api
