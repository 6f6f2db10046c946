#include "vmm/boot/linux_loader.h"

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/base/platform_layout.h"

namespace pcivmm::boot {
namespace {

using ::testing::HasSubstr;

template <typename T>
void Put(std::string& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

template <typename T>
T Get(absl::Span<const uint8_t> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

// A minimal bzImage: 4 setup sectors (+ boot sector), then `kernel_bytes` of "kernel".
std::string FakeBzImage(uint16_t version = 0x020F, size_t kernel_bytes = 8192) {
  std::string img(5 * 512 + kernel_bytes, '\0');
  img[0x1F1] = 4;
  Put<uint16_t>(img, 0x1FE, 0xAA55);
  img[0x201] = 0x6A;  // header ends at 0x26C
  Put<uint32_t>(img, 0x202, 0x53726448);
  Put<uint16_t>(img, 0x206, version);
  img[0x211] = 0x01;                      // LOADED_HIGH
  Put<uint32_t>(img, 0x22C, 0x7FFFFFFF);  // initrd_addr_max
  Put<uint16_t>(img, 0x236, 0x0001);      // XLF_KERNEL_64
  Put<uint32_t>(img, 0x238, 2048);        // cmdline_size
  Put<uint32_t>(img, 0x260, 0x100000);    // init_size
  for (size_t i = 5 * 512; i < img.size(); ++i) img[i] = static_cast<char>(i * 7);
  return img;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(LinuxLoaderTest, ParsesSetupHeader) {
  auto h = ParseBzImage(Bytes(FakeBzImage()));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->version, 0x020F);
  EXPECT_EQ(h->setup_bytes, 5u * 512);
  EXPECT_EQ(h->header_end, 0x26Cu);
  EXPECT_EQ(h->cmdline_size, 2048u);
}

TEST(LinuxLoaderTest, ZeroSetupSectsMeansFour) {
  std::string img = FakeBzImage();
  img[0x1F1] = 0;  // boot protocol: "If this field is 0, the real value is 4."
  auto h = ParseBzImage(Bytes(img));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->setup_bytes, 5u * 512);
}

TEST(LinuxLoaderTest, RejectsWhatIsNotABzImage) {
  std::string elf(8192, '\0');
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  EXPECT_THAT(ParseBzImage(Bytes(elf)).status().message(), HasSubstr("not a bzImage"));
  EXPECT_EQ(ParseBzImage(Bytes("short")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LinuxLoaderTest, RejectsProtocolOlderThan206) {
  auto h = ParseBzImage(Bytes(FakeBzImage(0x0205)));
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(h.status().message(), HasSubstr("2.05 is older than 2.06"));
}

TEST(LinuxLoaderTest, RejectsKernelWithout64BitEntry) {
  std::string img = FakeBzImage();
  Put<uint16_t>(img, 0x236, 0);
  EXPECT_THAT(ParseBzImage(Bytes(img)).status().message(), HasSubstr("XLF_KERNEL_64"));
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = kvm::GuestMemory::Create(64ull << 20);
    ASSERT_TRUE(m.ok()) << m.status();
    memory_.emplace(std::move(*m));
  }
  absl::Span<const uint8_t> Guest(uint64_t gpa, uint64_t len) {
    return *memory_->Translate(gpa, len);
  }
  std::optional<kvm::GuestMemory> memory_;
};

TEST_F(LoadTest, PlacesKernelCmdlineInitrdAndZeroPage) {
  LinuxImages images{FakeBzImage(), std::string(10000, 'I'), "console=ttyS0 quiet"};
  const std::vector<E820Entry> e820 = BuildE820(*memory_, {});
  auto entry = LoadLinux(*memory_, images, e820, base::layout::kAcpiBase);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->rip, 0x100200u);
  EXPECT_EQ(entry->zero_page, base::layout::kZeroPageAddr);
  // The protected-mode part (after the setup sectors) sits at 1 MiB.
  EXPECT_EQ(0, std::memcmp(Guest(0x100000, 8192).data(), images.kernel.data() + 5 * 512, 8192));
  // The initrd: page-aligned, as high as RAM allows, above the kernel's init_size.
  EXPECT_EQ(entry->initrd_gpa % 4096, 0u);
  EXPECT_LE(entry->initrd_gpa + images.initrd.size(), 64ull << 20);
  EXPECT_GT(entry->initrd_gpa, (64ull << 20) - 4096 - images.initrd.size());
  EXPECT_EQ(Guest(entry->initrd_gpa, 1)[0], 'I');
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(Guest(base::layout::kCmdlineAddr, 20).data())),
      images.cmdline);
  auto zp = Guest(base::layout::kZeroPageAddr, 4096);
  EXPECT_EQ(Get<uint32_t>(zp, 0x202), 0x53726448u);  // the setup header was copied
  EXPECT_EQ(zp[0x210], 0xFF);                        // type_of_loader
  EXPECT_EQ(Get<uint32_t>(zp, 0x228), base::layout::kCmdlineAddr);
  EXPECT_EQ(Get<uint32_t>(zp, 0x218), entry->initrd_gpa);
  EXPECT_EQ(Get<uint32_t>(zp, 0x21C), images.initrd.size());
  EXPECT_EQ(Get<uint64_t>(zp, 0x070), base::layout::kAcpiBase);
  ASSERT_EQ(zp[0x1E8], e820.size());
  EXPECT_EQ(Get<uint64_t>(zp, 0x2D0 + 20 + 8), e820[1].size);
}

TEST_F(LoadTest, RefusesCommandLineLongerThanTheKernelTakes) {
  LinuxImages images{FakeBzImage(), "", std::string(2049, 'x')};
  auto entry = LoadLinux(*memory_, images, {}, 0);
  EXPECT_EQ(entry.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(entry.status().message(), HasSubstr("cmdline"));
}

TEST_F(LoadTest, RefusesInitrdThatDoesNotFit) {
  LinuxImages images{FakeBzImage(), std::string(63ull << 20, 'I'), ""};
  auto entry = LoadLinux(*memory_, images, {}, 0);
  EXPECT_EQ(entry.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(entry.status().message(), HasSubstr("initrd"));
}

TEST(E820Test, SplitsLowMemoryAndAddsReservedRangesInOrder) {
  auto memory = kvm::GuestMemory::Create(5ull << 30);
  ASSERT_TRUE(memory.ok());
  const auto ecam = *mmio::AddressRange::Make(0xE0000000, 1 << 20);
  const auto fw = *mmio::AddressRange::Make(base::layout::kAcpiBase, base::layout::kAcpiSize);
  auto e820 = BuildE820(*memory, {ecam, fw});
  ASSERT_EQ(e820.size(), 5u);
  EXPECT_EQ(e820[0].addr, 0u);
  EXPECT_EQ(e820[0].size, base::layout::kLowRamEnd);
  EXPECT_EQ(e820[1].addr, base::layout::kAcpiBase);
  EXPECT_EQ(e820[1].type, kE820Reserved);
  EXPECT_EQ(e820[2].addr, 0x100000u);
  EXPECT_EQ(e820[2].size, kvm::kLowRamLimit - 0x100000);
  EXPECT_EQ(e820[3].addr, 0xE0000000u);
  EXPECT_EQ(e820[4].addr, kvm::kHighRamBase);
  EXPECT_EQ(e820[4].size, 2ull << 30);
  EXPECT_EQ(e820[4].type, kE820Ram);
}

}  // namespace
}  // namespace pcivmm::boot
