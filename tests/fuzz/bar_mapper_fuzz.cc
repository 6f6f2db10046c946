// Fuzzes the vBAR mapper with random command-register and BAR write sequences on two
// GPU-like devices and checks its invariants after every write: KVM (a fake that tracks
// the real slot set) never holds overlapping slots; no slot covers RAM, ECAM or the APICs
// or leaves the physical address width; under eager no slot exists while decode is off and
// every slot sits at its BAR's current address; the slot count stays within the BARs.
#include <map>

#include "pci/access/ecam_trap.h"
#include "pci/bar_mapper.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"

namespace {

using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer file

constexpr uint64_t kRamEnd = 1ull << 30;
constexpr int kPhysBits = 40;

const std::vector<mmio::AddressRange>& Reserved() {
  static const std::vector<mmio::AddressRange> r = {
      *mmio::AddressRange::Make(0, kRamEnd), *mmio::AddressRange::Make(pci::kEcamBase, 1 << 20),
      *mmio::AddressRange::Make(0xFEC00000, 0x1400000)};
  return r;
}

void CheckInvariants(const pci::BarMapper& m, const std::vector<pci::PciFunction*>& gpus,
                     const fuzz::TrackingKvm& kvm, pci::MapPolicy policy) {
  fuzz::Check(kvm.live.size() <= 1 + 3 * gpus.size(), "slot count within the BARs");
  for (const auto& [id, r] : kvm.live) {
    if (r.base() == 0) continue;  // the RAM slot
    for (const mmio::AddressRange& res : Reserved()) fuzz::Check(!res.Overlaps(r), "no reserved");
    fuzz::Check(r.end() <= (1ull << kPhysBits), "within phys bits");
  }
  if (policy != pci::MapPolicy::kEager) return;
  for (pci::PciFunction* f : gpus) {
    const bool decode = (f->Read(pci::cfg::kCommand, 2) & pci::cfg::kCommandMemory) != 0;
    for (const pci::BarSpec& b : f->spec().bars) {
      const auto at = m.MappedAt(*f, b.index);
      fuzz::Check(decode || !at, "eager: no slot while decode is off");
      fuzz::Check(!at || *at == f->BarAddress(b), "eager: slot at the BAR's address");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<pci::PciBus> bus = [] {
    auto b = *pci::PciBus::Create(1);
    fuzz::Check(b->AddDevice(pci::GpuLikeDevice("gpu0", 1, 1ull << 30)).ok(), "gpu0");
    fuzz::Check(b->AddDevice(pci::GpuLikeDevice("gpu1", 2, 1ull << 30)).ok(), "gpu1");
    return b;
  }();
  fuzz::Check(pci::AssignPciResources(*bus, *pci::DefaultPciWindows(kRamEnd, kPhysBits), {}).ok(),
              "fw");
  fuzz::TrackingKvm kvm;
  mmio::MemslotTable slots(&kvm, 64);
  fuzz::Check(slots.Install(0, kRamEnd, reinterpret_cast<void*>(0x7f0000000000), false).ok(),
              "ram");
  fuzz::FuzzInput in(data, size);
  pci::MapPolicy policy = (in.U8() & 1) ? pci::MapPolicy::kDeferred : pci::MapPolicy::kEager;
  pci::BarMapper::Options o{policy, {}, Reserved(), kPhysBits};
  auto mapper = std::make_unique<pci::BarMapper>(slots, o);
  std::vector<pci::PciFunction*> gpus = bus->functions();
  for (pci::PciFunction* f : gpus) fuzz::Check(mapper->Attach(*f).ok(), "attach");
  static constexpr uint32_t kValues[] = {0xFFFFFFFF, 0,    0xC0000000, 0xC1000000,
                                         0x80,       0x10, 0xE0000000, 0xFEC00000};
  while (!in.empty()) {
    const uint8_t op = in.U8();
    pci::PciFunction& f = *gpus[op & 1];
    const uint32_t v = (op & 0x40) ? in.U32() : kValues[in.U8() % 8];
    switch ((op >> 1) & 7) {
      case 0:
      case 1:
        f.Write(pci::cfg::kCommand, 2, v & 0xFFFF);
        break;
      case 6:
        policy =
            policy == pci::MapPolicy::kEager ? pci::MapPolicy::kDeferred : pci::MapPolicy::kEager;
        mapper->SetPolicy(policy);
        break;
      default:
        f.Write(static_cast<uint16_t>(pci::cfg::kBar0 + 4 * (((op >> 1) & 7) - 2 + (op >> 7))), 4,
                v);
    }
    CheckInvariants(*mapper, gpus, kvm, policy);
  }
  mapper.reset();
  fuzz::Check(kvm.live.size() == 1, "every BAR slot removed at teardown");
  return 0;
}
