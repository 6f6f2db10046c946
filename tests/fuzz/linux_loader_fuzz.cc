// Fuzzes direct Linux boot's loader: any kernel bytes (the bzImage setup header above all),
// initrd size and command line. ParseBzImage either refuses with a reason or accepts a header
// whose parts lie inside the file; LoadLinux then places everything inside guest RAM or refuses:
// never a crash, never a write outside the guest's memory.
//   input: [cmdline length: 2][initrd KiB: 2][kernel bytes...]
#include <cstdint>
#include <optional>
#include <string>

#include "tests/fuzz/fuzz_input.h"
#include "vmm/boot/linux_loader.h"

namespace pcivmm::fuzz {
namespace {

constexpr uint64_t kRam = 64ull << 20;

const kvm::GuestMemory& Memory() {
  static auto* memory = new kvm::GuestMemory(*kvm::GuestMemory::Create(kRam));
  return *memory;
}

}  // namespace
}  // namespace pcivmm::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pcivmm;        // NOLINT(google-build-using-namespace)
  using namespace pcivmm::fuzz;  // NOLINT(google-build-using-namespace)
  FuzzInput in(data, size);
  const size_t cmdline_len = (in.U8() | size_t{in.U8()} << 8) % 4096;
  const size_t initrd_kib = (in.U8() | size_t{in.U8()} << 8) % 4096;  // up to 4 MiB
  const size_t head = size < 4 ? size : 4;
  boot::LinuxImages images{std::string(reinterpret_cast<const char*>(data) + head, size - head),
                           std::string(initrd_kib << 10, 'I'), std::string(cmdline_len, 'c')};
  auto header = boot::ParseBzImage(absl::MakeConstSpan(
      reinterpret_cast<const uint8_t*>(images.kernel.data()), images.kernel.size()));
  if (!header.ok()) {
    Check(!header.status().message().empty(), "a refusal says why");
    return 0;
  }
  Check(header->setup_bytes <= images.kernel.size(), "the setup part lies inside the file");
  Check(header->version >= boot::kMinBootProtocol, "only protocol 2.06+ is accepted");
  const kvm::GuestMemory& memory = Memory();
  auto entry = boot::LoadLinux(memory, images, boot::BuildE820(memory, {}), 0xE0000);
  if (!entry.ok()) return 0;
  Check(entry->rip == 0x100000 + 0x200, "the 64-bit entry is load address + 0x200");
  Check(entry->zero_page + 4096 <= 0xA0000, "the zero page is in low RAM");
  Check(entry->initrd_gpa + entry->initrd_size <= kRam, "the initrd is inside guest RAM");
  Check(entry->initrd_size == images.initrd.size(), "the whole initrd is placed");
  return 0;
}
