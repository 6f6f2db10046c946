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
class TrackingKvm : public MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& r) override {
    if (r.memory_size == 0) {
      Check(live.erase(r.slot) == 1, "delete of a live slot");
      return absl::OkStatus();
    }
    const auto range = *AddressRange::Make(r.guest_phys_addr, r.memory_size);
    for (const auto& [id, other] : live) Check(!other.Overlaps(range), "no overlap in KVM");
    live.emplace(r.slot, range);
    return absl::OkStatus();
  }
  std::map<uint32_t, AddressRange> live;
};

inline std::unique_ptr<PciBus> MakeFuzzBus(int buses) {
  auto bus = PciBus::Create(buses);
  Check(bus.ok(), "bus");
  Check((*bus)->AddDevice(HostBridgeDevice()).ok(), "host bridge");
  Check((*bus)->AddDevice(GpuLikeDevice("gpu0", 1)).ok(), "gpu0");
  DeviceSpec f1 = GpuLikeDevice("gpu0.1", 1);
  f1.function = 1;
  Check((*bus)->AddDevice(f1).ok(), "gpu0.1");
  Check((*bus)->AddDevice(GpuLikeDevice("gpu1", 2)).ok(), "gpu1");
  Check(AssignPciResources(**bus, *DefaultPciWindows(1 << 30, 48), {}).ok(), "assign");
  return std::move(*bus);
}

// Invariants any sequence of guest accesses must keep.
inline void CheckFunctionInvariants(const PciBus& bus) {
  for (const PciFunction* f : bus.functions()) {
    const DeviceSpec& s = f->spec();
    Check(f->Read(cfg::kVendorId, 2) == s.vendor_id, "vendor id is read-only");
    Check(f->Read(cfg::kDeviceId, 2) == s.device_id, "device id is read-only");
    Check((f->Read(cfg::kRevisionId, 4) >> 8) == s.class_code, "class code is read-only");
    for (const BarSpec& b : s.bars) {
      Check(f->BarAddress(b) % b.size == 0, "BAR address is size-aligned");
      const uint32_t type = f->Read(BarOffset(b.index), 4) & 0xF;
      const uint32_t want = b.kind == BarKind::kIo      ? (type & 3) == 1
                            : b.kind == BarKind::kMem64 ? (type == (b.prefetchable ? 0xCu : 0x4u))
                                                        : (type == (b.prefetchable ? 0x8u : 0u));
      Check(want != 0, "BAR type bits are read-only");
    }
  }
}

}  // namespace pcivmm::fuzz

#endif  // PCIVMM_TESTS_FUZZ_PCI_FIXTURE_H_
