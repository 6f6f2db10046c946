// A PCI bus like the VMM's (host bridge + two GPU-like devices, firmware-assigned) for the
// config-path fuzzers.
#ifndef PCIVMM_TESTS_FUZZ_PCI_FIXTURE_H_
#define PCIVMM_TESTS_FUZZ_PCI_FIXTURE_H_

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "mmio/memslot_table.h"
#include "pci/firmware.h"
#include "pci/pci_bus.h"
#include "tests/fuzz/fuzz_input.h"

namespace pcivmm::fuzz {

// A memslot backend that checks what KVM would: deletes name a live slot, slots never overlap.
class TrackingKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& r) override {
    if (r.memory_size == 0) {
      Check(live.erase(r.slot) == 1, "delete of a live slot");
      return absl::OkStatus();
    }
    const auto range = *mmio::AddressRange::Make(r.guest_phys_addr, r.memory_size);
    for (const auto& [id, other] : live) Check(!other.Overlaps(range), "no overlap in KVM");
    live.emplace(r.slot, range);
    return absl::OkStatus();
  }
  std::map<uint32_t, mmio::AddressRange> live;
};

// With 5 buses or more, also a switch: root port 00:04.0 -> upstream port (bus 1) ->
// downstream ports at devices 0 and 1 of bus 2 -> a GPU behind the first (bus 3; bus 4 behind
// the second is empty), numbered by firmware; a fuzzed guest may renumber it.
inline void AddFuzzSwitch(pci::PciBus& bus) {
  Check(bus.AddDevice(pci::RootPortDevice("rp", 4, 1, true)).ok(), "root port");
  Check(bus.AddDevice(pci::SwitchUpstreamDevice("up", "rp")).ok(), "upstream port");
  Check(bus.AddDevice(pci::SwitchDownstreamDevice("down0", "up", 0, 2, true)).ok(), "down0");
  Check(bus.AddDevice(pci::SwitchDownstreamDevice("down1", "up", 1, 3, false)).ok(), "down1");
  pci::DeviceSpec gpu = pci::GpuLikeDevice("gpu2", 0, 1ull << 30);
  gpu.parent = "down0";
  Check(bus.AddDevice(gpu).ok(), "gpu2");
}

inline std::unique_ptr<pci::PciBus> MakeFuzzBus(int buses) {
  auto bus = pci::PciBus::Create(buses);
  Check(bus.ok(), "bus");
  Check((*bus)->AddDevice(pci::HostBridgeDevice()).ok(), "host bridge");
  Check((*bus)->AddDevice(pci::GpuLikeDevice("gpu0", 1)).ok(), "gpu0");
  pci::DeviceSpec f1 = pci::GpuLikeDevice("gpu0.1", 1);
  f1.function = 1;
  Check((*bus)->AddDevice(f1).ok(), "gpu0.1");
  Check((*bus)->AddDevice(pci::GpuLikeDevice("gpu1", 2)).ok(), "gpu1");
  if (buses >= 5) AddFuzzSwitch(**bus);
  Check(pci::AssignPciResources(**bus, *pci::DefaultPciWindows(1 << 30, 48), {}).ok(), "assign");
  return std::move(*bus);
}

// Invariants any sequence of guest accesses must keep.
inline void CheckFunctionInvariants(const pci::PciBus& bus) {
  for (const pci::PciFunction* f : bus.functions()) {
    const pci::DeviceSpec& s = f->spec();
    Check(f->Read(pci::cfg::kVendorId, 2) == s.vendor_id, "vendor id is read-only");
    Check(f->Read(pci::cfg::kDeviceId, 2) == s.device_id, "device id is read-only");
    Check((f->Read(pci::cfg::kRevisionId, 4) >> 8) == s.class_code, "class code is read-only");
    for (const pci::BarSpec& b : s.bars) {
      Check(f->BarAddress(b) % b.size == 0, "BAR address is size-aligned");
      const uint32_t type = f->Read(pci::BarOffset(b.index), 4) & 0xF;
      const uint32_t want = b.kind == pci::BarKind::kIo ? (type & 3) == 1
                            : b.kind == pci::BarKind::kMem64
                                ? (type == (b.prefetchable ? 0xCu : 0x4u))
                                : (type == (b.prefetchable ? 0x8u : 0u));
      Check(want != 0, "BAR type bits are read-only");
    }
  }
}

}  // namespace pcivmm::fuzz

#endif  // PCIVMM_TESTS_FUZZ_PCI_FIXTURE_H_
