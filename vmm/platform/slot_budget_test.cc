#include "vmm/platform/slot_budget.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "vmm/base/temp_dir.h"

namespace pcivmm::platform {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

TEST(SlotBudgetTest, ShadowPagingCostsReverseMapsHardwareKvmOnlyLargePageInfo) {
  // 8 B per 4 KiB page = 2 MiB per GiB, plus the 2 MiB/1 GiB levels and lpage_info.
  EXPECT_EQ(SlotMetadataBytesPerGib(kvm::KvmFlavour::kPvm), 2048u + 4 + 8 * (262144 + 512 + 1));
  EXPECT_EQ(SlotMetadataBytesPerGib(kvm::KvmFlavour::kUnknown),
            SlotMetadataBytesPerGib(kvm::KvmFlavour::kPvm));
  EXPECT_EQ(SlotMetadataBytesPerGib(kvm::KvmFlavour::kAmdSvm), 2052u);
  EXPECT_EQ(SlotMetadataBytesPerGib(kvm::KvmFlavour::kIntelVmx), 2052u);
}

TEST(SlotBudgetTest, ThirtyOneTebibyteBarsOnPvmAreRefusedNamingTheCostAndTheWayOut) {
  const uint64_t slots = 31 * 1024 * kGiB + (256ull << 20);
  const absl::Status st = CheckSlotBudget(slots, kvm::KvmFlavour::kPvm, 23 * kGiB);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  const std::string m(st.message());
  EXPECT_NE(m.find("of 31.0 TiB would cost the host kernel ~62.2 GiB"), std::string::npos) << m;
  EXPECT_NE(m.find("PVM: ~2054 KiB per GiB of slot"), std::string::npos) << m;
  EXPECT_NE(m.find("over half of the host's available memory (11.5 GiB of 23.0 GiB)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("--gpus, --gpu-bar1-gib"), std::string::npos) << m;
  // The same on hardware KVM costs ~62 MiB: allowed.
  EXPECT_TRUE(CheckSlotBudget(slots, kvm::KvmFlavour::kAmdSvm, 23 * kGiB).ok());
}

TEST(SlotBudgetTest, FourteenGpusOf128GibFitOnPvmWithEnoughMemory) {
  const uint64_t slots = 14 * 128 * kGiB;  // ~3.5 GiB of reverse maps
  EXPECT_TRUE(CheckSlotBudget(slots, kvm::KvmFlavour::kPvm, 8 * kGiB).ok());
  EXPECT_FALSE(CheckSlotBudget(slots, kvm::KvmFlavour::kPvm, 6 * kGiB).ok());
}

TEST(SlotBudgetTest, ReadsMemAvailable) {
  const base::TempDir dir("slot_budget_test");
  const std::string path = dir.path() + "/meminfo";
  std::ofstream(path) << "MemTotal:       24000000 kB\nMemFree:        1000 kB\n"
                         "MemAvailable:   12345678 kB\nBuffers: 1 kB\n";
  auto v = HostMemAvailable(path.c_str());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 12345678ull << 10);
  std::ofstream(path) << "MemTotal: 1 kB\n";
  EXPECT_EQ(HostMemAvailable(path.c_str()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(HostMemAvailable().ok());  // this host's
}

}  // namespace
}  // namespace pcivmm::platform
