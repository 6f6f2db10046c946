// Fuzzes the ECAM window decoder: any access (1, 2, 4 or 8 bytes, any offset in a 2-bus
// window) must give all-ones for absent functions and malformed accesses, drop malformed
// writes, and keep every function's read-only fields intact.
#include "mmio/bus.h"
#include "pci/access/ecam_trap.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  // One bus for the process: the invariants must hold from any reachable state.
  static std::unique_ptr<pci::PciBus> pci = fuzz::MakeFuzzBus(2);
  auto ecam = std::make_shared<pci::EcamConfigAccess>(pci.get());
  mmio::Bus mmio("mmio", UINT64_MAX);
  fuzz::Check(mmio.Register(pci::kEcamBase, ecam->window_size(), ecam).ok(), "register");
  fuzz::FuzzInput in(data, size);
  while (!in.empty()) {
    const uint8_t op = in.U8();
    // Bias toward bus 0, device 0..3, so the accesses meet real functions.
    const uint32_t raw = in.U32();
    const uint64_t offset = (op & 0x80) ? raw % ecam->window_size() : raw % (4u << 15);
    const size_t width = size_t{1} << ((op >> 1) & 3);  // 1, 2, 4, 8
    uint8_t buf[8];
    if (op & 1) {
      const uint32_t v = in.U32();
      for (size_t i = 0; i < width; ++i) buf[i] = static_cast<uint8_t>(v >> (8 * (i % 4)));
      mmio.Write(pci::kEcamBase + offset, absl::MakeConstSpan(buf, width), 0);
      continue;
    }
    mmio.Read(pci::kEcamBase + offset, absl::MakeSpan(buf, width), 0);
    const pci::EcamOffset e{offset};
    const bool valid = pci::ConfigSpace::ValidAccess(e.reg(), static_cast<uint32_t>(width));
    if (!valid || pci->Find(e.bdf()) == nullptr) {
      for (size_t i = 0; i < width; ++i) fuzz::Check(buf[i] == 0xFF, "all-ones");
    }
  }
  fuzz::CheckFunctionInvariants(*pci);
  return 0;
}
