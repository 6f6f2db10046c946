// Fuzzes configuration mechanism #1: any sequence of port accesses of any width to
// 0xCF8..0xCFF (and a little around it) must give the spec's answers and keep every
// function's read-only fields intact.
#include "mmio/bus.h"
#include "pci/access/pio_cf8.h"
#include "pci/le_bytes.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/pci_fixture.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;  // NOLINT(google-build-using-namespace): fuzzer entry point
  // One bus for the process: the invariants must hold from any reachable state.
  static std::unique_ptr<pci::PciBus> pci = fuzz::MakeFuzzBus(1);
  auto pio = std::make_shared<pci::PioConfigAccess>(pci.get());
  mmio::Bus ports("pio", 0x10000);
  fuzz::Check(ports.Register(pci::kPioConfigAddressPort, 8, pio).ok(), "register");
  fuzz::FuzzInput in(data, size);
  while (!in.empty()) {
    const uint8_t op = in.U8();
    const auto port = static_cast<uint16_t>(0xCF6 + (op >> 4) % 12);
    const size_t width = size_t{1} << ((op >> 1) & 3) % 3;  // 1, 2, 4
    uint8_t buf[4];
    if (op & 1) {
      pci::StoreLe(in.U32(), absl::MakeSpan(buf, width));
      ports.Write(port, absl::MakeConstSpan(buf, width), 0);
    } else {
      ports.Read(port, absl::MakeSpan(buf, width), 0);
    }
    if ((op & 0xF) == 0xE) pio->set_enabled(!pio->enabled());
  }
  fuzz::CheckFunctionInvariants(*pci);
  // Absent functions read all-ones through the data port.
  pio->set_enabled(true);
  uint8_t latch[4];
  pci::StoreLe(0x80000000u | 7u << 11, absl::MakeSpan(latch));
  ports.Write(pci::kPioConfigAddressPort, latch, 0);
  uint8_t v[4];
  ports.Read(pci::kPioConfigDataPort, absl::MakeSpan(v), 0);
  fuzz::Check(pci::LoadLe(v) == 0xFFFFFFFF, "absent function reads all-ones");
  return 0;
}
