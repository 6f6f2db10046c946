// Fuzzes a passthrough function (an edu-like fake device behind PassthroughFunction, with
// the vBAR mapper and a fake interrupt router) with random config writes, reads and trapped
// BAR accesses from the guest, and checks after each: the device's BARs, ROM BAR, interrupt
// line and header type were never written; its memory decode stayed on; no slot covers a BAR
// while the guest's decode is off, and a slot sits at its BAR's address; MSI is forwarded to
// the device exactly while a route exists; KVM never holds overlapping slots.
#include <map>
#include <vector>

#include "pci/firmware.h"
#include "pci/pci_bus.h"
#include "pci/vfio/fake_passthrough_device.h"
#include "pci/vfio/passthrough_function.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"

namespace {

using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer file

class CountingRouter : public vfio::InterruptRouter {
 public:
  absl::StatusOr<int> AddMsiRoute(int, uint64_t, uint32_t) override {
    ++routes;
    return next++;
  }
  absl::Status UpdateMsiRoute(int, uint64_t, uint32_t) override { return absl::OkStatus(); }
  absl::Status RemoveMsiRoute(int) override {
    --routes;
    return absl::OkStatus();
  }
  absl::Status AddIntxRoute(int, int, uint32_t) override { return absl::OkStatus(); }
  absl::Status RemoveIntxRoute(int, uint32_t) override { return absl::OkStatus(); }
  int routes = 0;
  int next = 24;
};

constexpr uint64_t kRamEnd = 1ull << 30;
constexpr pci::Bdf kBdf{0, 3, 0};

void MakeDevice(vfio::testing::FakePassthroughDevice& d) {
  d.SetConfig(pci::cfg::kVendorId, 4, 0x11E81234);
  d.SetConfig(pci::cfg::kStatus, 2, 0x0010);
  d.SetConfig(pci::cfg::kClassCode, 3, 0x00FF00);
  d.SetConfig(pci::BarOffset(0), 4, 0xFEA00000);
  d.SetConfig(pci::BarOffset(2), 4, 0xE000000C);
  d.SetConfig(pci::BarOffset(4), 4, 0xFEB13000);
  d.SetConfig(pci::cfg::kCapabilitiesPointer, 1, 0x40);
  d.SetConfig(pci::cfg::kInterruptLine, 2, 0x010B);
  d.SetConfig(0x40, 4, 0x0086'5005);  // MSI, 64-bit, 8 vectors capable, next 0x50
  d.SetConfig(0x50, 4, 0x0000'0011);  // MSI-X, end
  d.AddBar(0, 64 << 10, true);
  d.AddBar(2, 1 << 20, true);
  d.AddBar(4, 256, false);
  d.irq_counts_ = {1, 4, 0};
}

void CheckDevice(const vfio::testing::FakePassthroughDevice& d,
                 const std::vector<uint8_t>& initial) {
  for (uint16_t at : {uint16_t{pci::cfg::kHeaderType}, uint16_t{pci::cfg::kInterruptLine}}) {
    fuzz::Check(d.Config(at, 1) == initial[at], "owned byte never written to the device");
  }
  for (uint16_t at = pci::cfg::kBar0; at < pci::cfg::kBar0 + 24; ++at) {
    fuzz::Check(d.Config(at, 1) == initial[at], "BARs never written to the device");
  }
  fuzz::Check(d.Config(pci::cfg::kRomBar, 1) == initial[pci::cfg::kRomBar],
              "ROM BAR never written");
  fuzz::Check((d.Config(pci::cfg::kCommand, 2) & pci::cfg::kCommandMemory) != 0,
              "real decode stays on");
}

void CheckSlots(const vfio::PassthroughFunction& p, const pci::BarMapper& m) {
  const pci::PciFunction& f = p.function();
  const bool decode = (f.ReadEmulated(pci::cfg::kCommand, 2) & pci::cfg::kCommandMemory) != 0;
  for (const pci::BarSpec& b : f.spec().bars) {
    const auto at = m.MappedAt(f, b.index);
    fuzz::Check(decode || !at, "no slot while the guest's decode is off");
    fuzz::Check(!at || *at == f.BarAddress(b), "a slot sits at its BAR's address");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  vfio::testing::FakePassthroughDevice dev;
  MakeDevice(dev);
  std::vector<uint8_t> initial(256);
  for (uint16_t i = 0; i < 256; ++i) initial[i] = static_cast<uint8_t>(dev.Config(i, 1));
  auto bus = *pci::PciBus::Create(1);
  auto p = vfio::PassthroughFunction::Create(dev, *bus, {.slot = kBdf.device});
  fuzz::Check(p.ok(), "create");
  fuzz::Check(pci::AssignPciResources(*bus, *pci::DefaultPciWindows(kRamEnd, 40), {}).ok(),
              "firmware");
  fuzz::TrackingKvm kvm;
  mmio::MemslotTable slots(&kvm, 64);
  const pci::MapPolicy policy = (in.U8() & 1) ? pci::MapPolicy::kDeferred : pci::MapPolicy::kEager;
  pci::BarMapper mapper(slots, {policy, {}, {*mmio::AddressRange::Make(0, kRamEnd)}, 40});
  mmio::Bus mmio("mmio", UINT64_MAX);
  mmio::Bus pio("pio", 0x10000);
  CountingRouter router;
  fuzz::Check((*p)->Activate(mmio, pio, mapper, &router, 19).ok(), "activate");
  while (!in.empty()) {
    const uint8_t op = in.U8();
    const uint8_t width = static_cast<uint8_t>(1u << ((op & 3) % 3));
    const auto reg = static_cast<uint16_t>((in.U8() & ~(width - 1u)) & 0xFF);
    const uint32_t value = in.U32();
    if ((op & 0xC) == 0) {
      (void)bus->Read(pci::ConfigPath::kPio, kBdf, reg, width, 0);
    } else if ((op & 0xC) == 0x4) {
      const pci::BarSpec& b = (*p)->function().spec().bars[(op >> 4) % 3];
      uint8_t buf[4] = {};
      mmio.Read((*p)->function().BarAddress(b) + (value % 64) * 4, absl::MakeSpan(buf), 0);
    } else {
      bus->Write(pci::ConfigPath::kPio, kBdf, reg, width, value, 0);
    }
    CheckDevice(dev, initial);
    CheckSlots(**p, mapper);
    fuzz::Check(router.routes == static_cast<int>(dev.irq_fds_[1].size()), "MSI routes");
  }
  p->reset();  // before the buses and the router it uses
  fuzz::Check(router.routes == 0, "MSI routes removed at teardown");
  return 0;
}
