#include "vmm/boot/linux_loader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/base/platform_layout.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::boot {
namespace {

// Setup-header offsets in the image and in boot_params (boot.rst, "THE REAL-MODE KERNEL
// HEADER"; arch/x86/include/uapi/asm/bootparam.h).
constexpr size_t kSetupSects = 0x1F1;
constexpr size_t kVidMode = 0x1FA;
constexpr size_t kBootFlag = 0x1FE;
constexpr size_t kJumpEnd = 0x201;  // "offset of the end of the header, relative to 0x202"
constexpr size_t kHeaderMagic = 0x202;
constexpr size_t kVersion = 0x206;
constexpr size_t kTypeOfLoader = 0x210;
constexpr size_t kLoadflags = 0x211;
constexpr size_t kRamdiskImage = 0x218;
constexpr size_t kRamdiskSize = 0x21C;
constexpr size_t kCmdLinePtr = 0x228;
constexpr size_t kInitrdAddrMax = 0x22C;
constexpr size_t kXloadflags = 0x236;
constexpr size_t kCmdlineSize = 0x238;
constexpr size_t kInitSize = 0x260;
// boot_params fields outside the setup header.
constexpr size_t kAcpiRsdpAddr = 0x070;
constexpr size_t kE820Entries = 0x1E8;
constexpr size_t kE820Table = 0x2D0;
constexpr size_t kE820MaxEntries = 128;
constexpr size_t kZeroPageSize = 4096;

constexpr uint32_t kHdrS = 0x53726448;      // "HdrS"
constexpr uint8_t kLoadedHigh = 1u << 0;    // protected-mode code loaded at 0x100000
constexpr uint16_t kXlfKernel64 = 1u << 0;  // "has the legacy 64-bit entry point at 0x200"
constexpr uint8_t kUndefinedLoader = 0xFF;  // "0xFF ... no assigned ID"
constexpr uint64_t kEntry64Offset = 0x200;

template <typename T>
T Get(absl::Span<const uint8_t> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

template <typename T>
void Put(absl::Span<uint8_t> b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("kernel: %s", what));
}

}  // namespace

absl::StatusOr<SetupHeader> ParseBzImage(absl::Span<const uint8_t> image) {
  if (image.size() < kInitSize + 4) return Invalid("too short to hold a setup header");
  if (Get<uint16_t>(image, kBootFlag) != 0xAA55 || Get<uint32_t>(image, kHeaderMagic) != kHdrS) {
    return Invalid("not a bzImage (no 0xAA55 boot flag and \"HdrS\" header)");
  }
  SetupHeader h;
  h.version = Get<uint16_t>(image, kVersion);
  if (h.version < kMinBootProtocol) {
    return Invalid(absl::StrFormat("boot protocol %d.%02d is older than 2.06", h.version >> 8,
                                   h.version & 0xFF));
  }
  h.loadflags = image[kLoadflags];
  if ((h.loadflags & kLoadedHigh) == 0) return Invalid("a zImage (not LOADED_HIGH)");
  h.xloadflags = h.version >= 0x020C ? Get<uint16_t>(image, kXloadflags) : 0;
  if ((h.xloadflags & kXlfKernel64) == 0) return Invalid("no 64-bit entry point (XLF_KERNEL_64)");
  const uint8_t sects = image[kSetupSects];
  // "If this field is 0, the real value is 4"; the real-mode part is (setup_sects + 1) sectors.
  h.setup_bytes = ((sects == 0 ? size_t{4} : size_t{sects}) + 1) * 512;
  if (h.setup_bytes >= image.size()) return Invalid("setup_sects points past the end of the file");
  h.header_end = 0x202 + image[kJumpEnd];
  h.initrd_addr_max = Get<uint32_t>(image, kInitrdAddrMax);
  h.cmdline_size = Get<uint32_t>(image, kCmdlineSize);
  h.init_size = h.version >= 0x020A ? Get<uint32_t>(image, kInitSize) : 0;
  return h;
}

std::vector<E820Entry> BuildE820(const kvm::GuestMemory& memory,
                                 const std::vector<mmio::AddressRange>& reserved) {
  std::vector<E820Entry> e820;
  for (const kvm::GuestMemory::Region& r : memory.regions()) {
    uint64_t start = r.gpa.base();
    if (start == 0) {
      // The first MiB: low RAM below the EBDA; 0xA0000..1 MiB is legacy/firmware space.
      e820.push_back({0, base::layout::kLowRamEnd, kE820Ram});
      start = base::layout::kKernelLoadAddr;
    }
    if (r.gpa.end() > start) e820.push_back({start, r.gpa.end() - start, kE820Ram});
  }
  for (const mmio::AddressRange& r : reserved) e820.push_back({r.base(), r.size(), kE820Reserved});
  std::sort(e820.begin(), e820.end(),
            [](const E820Entry& a, const E820Entry& b) { return a.addr < b.addr; });
  return e820;
}

namespace {

absl::Status WriteZeroPage(absl::Span<uint8_t> zp, absl::Span<const uint8_t> image,
                           const SetupHeader& h, const std::vector<E820Entry>& e820) {
  if (e820.size() > kE820MaxEntries) return absl::InternalError("e820: too many entries");
  std::memset(zp.data(), 0, zp.size());
  // boot.rst, 64-bit boot protocol: "the setup_header ... copied from the kernel image
  // into struct boot_params".
  const size_t end = std::min(h.header_end, image.size());
  std::memcpy(zp.data() + kSetupSects, image.data() + kSetupSects, end - kSetupSects);
  Put<uint16_t>(zp, kVidMode, 0xFFFF);  // "normal"
  zp[kTypeOfLoader] = kUndefinedLoader;
  Put<uint32_t>(zp, kCmdLinePtr, static_cast<uint32_t>(base::layout::kCmdlineAddr));
  zp[kE820Entries] = static_cast<uint8_t>(e820.size());
  for (size_t i = 0; i < e820.size(); ++i) {
    const size_t off = kE820Table + i * 20;
    Put<uint64_t>(zp, off, e820[i].addr);
    Put<uint64_t>(zp, off + 8, e820[i].size);
    Put<uint32_t>(zp, off + 16, e820[i].type);
  }
  return absl::OkStatus();
}

// boot.rst: the initrd goes as high as possible, its last byte at or below initrd_addr_max,
// page-aligned, above the kernel's init_size.
absl::StatusOr<uint64_t> PlaceInitrd(const kvm::GuestMemory& memory, const SetupHeader& h,
                                     uint64_t size, uint64_t kernel_end) {
  const uint64_t low_end = std::min(memory.regions().front().gpa.end(), kvm::kLowRamLimit);
  const uint64_t top = std::min<uint64_t>(uint64_t{h.initrd_addr_max} + 1, low_end);
  if (size > top || ((top - size) & ~0xFFFull) < kernel_end) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "initrd: %d bytes do not fit between the kernel's end %#x and %#x", size, kernel_end, top));
  }
  return (top - size) & ~0xFFFull;
}

}  // namespace

absl::StatusOr<LinuxEntry> LoadLinux(const kvm::GuestMemory& memory, const LinuxImages& images,
                                     const std::vector<E820Entry>& e820, uint64_t rsdp_gpa) {
  const auto image = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(images.kernel.data()),
                                         images.kernel.size());
  PCIVMM_ASSIGN_OR_RETURN(SetupHeader h, ParseBzImage(image));
  if (images.cmdline.size() > h.cmdline_size ||
      images.cmdline.size() >= base::layout::kCmdlineMax) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cmdline: %d bytes; the kernel takes at most %d", images.cmdline.size(),
                        std::min<uint64_t>(h.cmdline_size, base::layout::kCmdlineMax - 1)));
  }
  const auto kernel = image.subspan(h.setup_bytes);
  if (absl::Status st = memory.Write(base::layout::kKernelLoadAddr, kernel); !st.ok()) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "kernel: %d bytes do not fit in guest RAM at 1 MiB: %s", kernel.size(), st.message()));
  }
  const uint64_t kernel_end =
      base::layout::kKernelLoadAddr + std::max<uint64_t>(kernel.size(), h.init_size);
  LinuxEntry entry{base::layout::kKernelLoadAddr + kEntry64Offset, base::layout::kZeroPageAddr, 0,
                   0};
  if (!images.initrd.empty()) {
    PCIVMM_ASSIGN_OR_RETURN(entry.initrd_gpa,
                            PlaceInitrd(memory, h, images.initrd.size(), kernel_end));
    entry.initrd_size = images.initrd.size();
    PCIVMM_RETURN_IF_ERROR(
        memory.Write(entry.initrd_gpa,
                     absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(images.initrd.data()),
                                         images.initrd.size())));
  }
  PCIVMM_ASSIGN_OR_RETURN(auto cmdline,
                          memory.Translate(base::layout::kCmdlineAddr, base::layout::kCmdlineMax));
  std::memset(cmdline.data(), 0, cmdline.size());
  std::memcpy(cmdline.data(), images.cmdline.data(), images.cmdline.size());
  PCIVMM_ASSIGN_OR_RETURN(auto zp, memory.Translate(base::layout::kZeroPageAddr, kZeroPageSize));
  PCIVMM_RETURN_IF_ERROR(WriteZeroPage(zp, image, h, e820));
  Put<uint32_t>(zp, kRamdiskImage, static_cast<uint32_t>(entry.initrd_gpa));
  Put<uint32_t>(zp, kRamdiskSize, static_cast<uint32_t>(entry.initrd_size));
  Put<uint64_t>(zp, kAcpiRsdpAddr, rsdp_gpa);
  return entry;
}

}  // namespace pcivmm::boot
