// Fuzzes ConfigSpace write/read sequences on a GPU-like function: whatever is written, the
// read-only fields stay, RW1C bits never get set by a write, BARs stay size-aligned with
// their type bits, and the capability list stays a terminated chain.
#include <set>

#include "pci/pci_function.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"  // Check()

namespace {

void CheckCapabilityChain(const pcivmm::pci::PciFunction& f) {
  std::set<uint32_t> seen;
  for (uint32_t at = f.Read(pcivmm::pci::cfg::kCapabilitiesPointer, 1); at != 0;
       at = f.Read(static_cast<uint16_t>(at + 1), 1)) {
    pcivmm::fuzz::Check(at >= 0x40 && at < 0x100 && at % 4 == 0, "capability in range");
    pcivmm::fuzz::Check(seen.insert(at).second, "capability list has no cycle");
  }
  pcivmm::fuzz::Check(seen.size() == 4, "four capabilities");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  alignas(4) static uint8_t storage[pci::kConfigSpaceSize];
  pci::PciFunction f(pci::GpuLikeDevice("gpu", 1), absl::MakeSpan(storage));
  const uint16_t status_before = static_cast<uint16_t>(f.Read(pci::cfg::kStatus, 2));
  fuzz::FuzzInput in(data, size);
  while (!in.empty()) {
    const uint8_t op = in.U8();
    const auto reg =
        static_cast<uint16_t>(((op & 0x80) ? in.U8() | (in.U8() & 0xF) << 8 : in.U8()));
    const auto width = static_cast<uint8_t>(1u << ((op >> 1) & 3) % 3);
    if (!pci::ConfigSpace::ValidAccess(reg, width)) continue;
    if (op & 1) {
      f.Write(reg, width, in.U32());
    } else {
      (void)f.Read(reg, width);
    }
  }
  const pci::DeviceSpec& s = f.spec();
  fuzz::Check(f.Read(pci::cfg::kVendorId, 4) == (uint32_t{s.device_id} << 16 | s.vendor_id), "ids");
  const auto status = static_cast<uint16_t>(f.Read(pci::cfg::kStatus, 2));
  fuzz::Check((status & ~status_before) == 0, "writes never set status bits");
  for (const pci::BarSpec& b : s.bars) fuzz::Check(f.BarAddress(b) % b.size == 0, "BAR aligned");
  CheckCapabilityChain(f);
  return 0;
}
