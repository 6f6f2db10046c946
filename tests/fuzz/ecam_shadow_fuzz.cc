// Differential fuzzer for the ECAM fast path: after any sequence of trapped config writes
// (bus numbers of the switch's bridges included: the shadow is remapped), every byte of the
// read-only shadow the guest reads equals what the trap path returns, on every bus.
#include "mmio/memslot_table.h"
#include "pci/access/ecam_fast_path.h"
#include "pci/access/ecam_trap.h"
#include "pci/le_bytes.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"

namespace {

class NoKvm : public pcivmm::mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region&) override {
    return absl::OkStatus();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  // One bus and shadow for the process: the equality must hold from any reachable state.
  static std::unique_ptr<pci::PciBus> pci = fuzz::MakeFuzzBus(5);
  static NoKvm kvm;
  static mmio::MemslotTable slots(&kvm, 8);
  static std::unique_ptr<pci::EcamFastPath> fast =
      *pci::EcamFastPath::Create(*pci, slots, pci::kEcamBase);
  pci::EcamConfigAccess ecam(pci.get());
  fuzz::FuzzInput in(data, size);
  // Where the functions are: devices 0..4 of bus 0, devices 0..1 of buses 1..4.
  auto place = [](uint32_t raw) -> uint64_t {
    const uint64_t bus = (raw >> 24) % 5;
    return bus << 20 | (raw % ((bus == 0 ? 5u : 2u) << 15));
  };
  while (!in.empty()) {
    const uint8_t op = in.U8();
    const uint64_t offset = place(in.U32());
    const size_t width = size_t{1} << ((op >> 1) & 3);
    uint8_t buf[8];
    pci::StoreLe(in.U32(), absl::MakeSpan(buf, width));
    ecam.Write(offset, absl::MakeConstSpan(buf, width), 0);
  }
  const auto window = fast->window();
  for (uint64_t bus = 0; bus < 5; ++bus) {
    for (uint64_t off = 0; off < ((bus == 0 ? 5u : 2u) << 15); off += 4) {
      uint8_t trap[4];
      ecam.Read(bus << 20 | off, absl::MakeSpan(trap), 0);
      fuzz::Check(pci::LoadLe(window.subspan(bus << 20 | off, 4)) == pci::LoadLe(trap),
                  "shadow equals trap path");
    }
  }
  return 0;
}
