// Events in causal order: a config write's access event comes before the BAR mapping events
// the write causes (the API's event feed shows them in the order they are published).
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pci/access/ecam_trap.h"
#include "pci/bar_mapper.h"
#include "pci/firmware.h"

namespace pcivmm::pci {
namespace {

class NoKvm : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region&) override {
    return absl::OkStatus();
  }
};

// One log for both feeds, as the event hub keeps one sequence for both.
class Recorder : public ConfigTracer, public MapEventSink {
 public:
  void OnConfigAccess(const ConfigAccess& a) override {
    log.push_back(a.direction == mmio::Direction::kWrite ? "config write" : "config read");
  }
  void OnMapEvent(const MapEvent& e) override {
    log.push_back(e.kind == MapEventKind::kUnmap ? "unmap" : "map");
  }
  std::vector<std::string> log;
};

TEST(EventOrderTest, AConfigWriteIsPublishedBeforeTheMappingItCauses) {
  constexpr uint64_t kRamEnd = 1ull << 30;
  std::unique_ptr<PciBus> bus = *PciBus::Create(1);
  PciFunction* gpu = *bus->AddDevice(GpuLikeDevice("gpu", 1, 1ull << 30));
  ASSERT_TRUE(AssignPciResources(*bus, *DefaultPciWindows(kRamEnd, 40), {true, false}).ok());
  NoKvm kvm;
  mmio::MemslotTable slots(&kvm, 64);
  BarMapper::Options o;
  o.phys_bits = 40;
  o.reserved = {*mmio::AddressRange::Make(0, kRamEnd),
                *mmio::AddressRange::Make(kEcamBase, 1 << 20)};
  BarMapper mapper(slots, o);
  ASSERT_TRUE(mapper.Attach(*gpu).ok());
  Recorder rec;
  bus->SetTracer(&rec);
  mapper.SetEventSink(&rec);
  bus->Write(ConfigPath::kEcam, {0, 1, 0}, cfg::kCommand, 2, 0, 0);  // decode off: 3 unmaps
  bus->Write(ConfigPath::kEcam, {0, 1, 0}, cfg::kCommand, 2, cfg::kCommandMemory, 0);
  EXPECT_EQ(rec.log, (std::vector<std::string>{"config write", "unmap", "unmap", "unmap",
                                               "config write", "map", "map", "map"}));
}

}  // namespace
}  // namespace pcivmm::pci
