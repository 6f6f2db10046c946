#include "api/stats_collector.h"

#include <linux/kvm.h>
#include <sys/mman.h>

#include <cstring>

#include "api/vm_backend.h"
#include "gtest/gtest.h"
#include "pci/firmware.h"

namespace pcivmm::api {
namespace {

class FakeSlots : public mmio::MemslotBackend {
 public:
  absl::Status SetUserMemoryRegion(const kvm_userspace_memory_region& /*r*/) override {
    return absl::OkStatus();
  }
};

class NullDevice : public mmio::IoDevice {
 public:
  std::string_view Name() const override { return "scratch"; }
  void Read(uint64_t /*offset*/, absl::Span<uint8_t> /*data*/, int /*vcpu*/) override {}
  void Write(uint64_t /*offset*/, absl::Span<const uint8_t> /*data*/, int /*vcpu*/) override {}
};

constexpr pci::Bdf kGpu{0, 1, 0};
constexpr pci::Bdf kAbsent{0, 5, 0};
constexpr uint64_t kRamEnd = 1ull << 30;

class StatsCollectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    region_ = *mmio_.Register(0xD0000000, 0x1000, std::make_shared<NullDevice>());
    bus_ = *pci::PciBus::Create(1);
    ASSERT_TRUE(bus_->AddDevice(pci::HostBridgeDevice()).ok());
    gpu_ = *bus_->AddDevice(pci::GpuLikeDevice("gpu0", 1, 1ull << 30));
    ASSERT_TRUE(
        pci::AssignPciResources(*bus_, *pci::DefaultPciWindows(kRamEnd, 40), {true, false}).ok());
    pci::BarMapper::Options o;
    o.phys_bits = 40;
    o.reserved = {*mmio::AddressRange::Make(0, kRamEnd)};
    mapper_ = std::make_unique<pci::BarMapper>(slots_, o);
    ASSERT_TRUE(mapper_->Attach(*gpu_).ok());
    collector_ = std::make_unique<StatsCollector>(
        StatsCollector::Sources{&exits_, &pio_, &mmio_, bus_.get(), mapper_.get(), nullptr});
  }
  v1::ExitStats Exits() {
    v1::ExitStats e;
    collector_->CollectExits(&e);
    return e;
  }
  v1::ConfigStats Config(bool registers = false, std::optional<pci::Bdf> only = std::nullopt) {
    v1::ConfigStats c;
    collector_->CollectConfig(registers, only, &c);
    return c;
  }
  void PioReads(pci::Bdf bdf, uint16_t reg, int n) {
    for (int i = 0; i < n; ++i) bus_->Read(pci::ConfigPath::kPio, bdf, reg, 4, 0);
  }

  kvm::ExitStats exits_{2};
  mmio::Bus pio_{"pio", 0x10000};
  mmio::Bus mmio_{"mmio", UINT64_MAX};
  int region_ = 0;
  FakeSlots kvm_;
  mmio::MemslotTable slots_{&kvm_, 512};
  std::unique_ptr<pci::PciBus> bus_;
  pci::PciFunction* gpu_ = nullptr;
  std::unique_ptr<pci::BarMapper> mapper_;
  std::unique_ptr<StatsCollector> collector_;
};

TEST_F(StatsCollectorTest, ExitsSumVcpusAndListOnlyTouchedPortsAndRegions) {
  for (int i = 0; i < 3; ++i) exits_.vcpu(0).CountExit(KVM_EXIT_IO);
  for (int i = 0; i < 2; ++i) exits_.vcpu(1).CountExit(KVM_EXIT_IO);
  exits_.vcpu(1).CountExit(KVM_EXIT_MMIO);
  exits_.vcpu(0).CountPio(0xCF8, mmio::Direction::kWrite);
  exits_.vcpu(1).CountPio(0xCF8, mmio::Direction::kWrite);
  exits_.vcpu(1).CountPio(0xCFC, mmio::Direction::kRead);
  exits_.vcpu(1).CountMmio(region_, mmio::Direction::kRead);
  const v1::ExitStats e = Exits();
  EXPECT_EQ(e.total(), 6u);
  ASSERT_EQ(e.by_reason_size(), 2);
  EXPECT_EQ(e.by_reason(0).reason(), "IO");
  EXPECT_EQ(e.by_reason(0).count(), 5u);
  ASSERT_EQ(e.by_port_size(), 2);
  EXPECT_EQ(e.by_port(0).port(), 0xCF8u);
  EXPECT_EQ(e.by_port(0).writes(), 2u);
  EXPECT_EQ(e.by_port(1).reads(), 1u);
  ASSERT_EQ(e.by_mmio_region_size(), 1);
  EXPECT_EQ(e.by_mmio_region(0).name(), "scratch");
  ASSERT_EQ(e.by_vcpu_size(), 2);
  EXPECT_EQ(e.by_vcpu(0).total(), 3u);
  EXPECT_EQ(e.by_vcpu(1).total(), 3u);
}

TEST_F(StatsCollectorTest, AResetTurnsLaterReadsIntoDeltas) {
  exits_.vcpu(0).CountExit(KVM_EXIT_IO);
  exits_.vcpu(0).CountPio(0x510, mmio::Direction::kWrite);
  exits_.vcpu(0).CountMmio(region_, mmio::Direction::kWrite);
  collector_->Reset(kScopeExits);
  EXPECT_EQ(Exits().total(), 0u);
  EXPECT_EQ(Exits().by_port_size(), 0);
  exits_.vcpu(0).CountExit(KVM_EXIT_IO);
  exits_.vcpu(0).CountPio(0x510, mmio::Direction::kWrite);
  const v1::ExitStats e = Exits();
  EXPECT_EQ(e.total(), 1u);
  EXPECT_EQ(e.by_port(0).writes(), 1u);
  EXPECT_EQ(e.by_mmio_region_size(), 0);
  EXPECT_EQ(e.by_vcpu(0).total(), 1u);
}

TEST_F(StatsCollectorTest, ConfigAccessesByPathFunctionAndRegister) {
  PioReads(kGpu, 0, 5);
  bus_->Write(pci::ConfigPath::kEcam, kGpu, 0x10, 4, 0xFFFFFFFF, 0);
  PioReads(kAbsent, 0, 2);
  const v1::ConfigStats c = Config(/*registers=*/true);
  ASSERT_EQ(c.by_path_size(), 3);
  EXPECT_EQ(c.by_path(0).path(), v1::CONFIG_PATH_PIO);
  EXPECT_EQ(c.by_path(0).reads(), 7u);
  EXPECT_EQ(c.by_path(1).writes(), 1u);
  ASSERT_EQ(c.by_function_size(), 2);  // present functions only: gpu0 by pio, by ecam
  EXPECT_EQ(c.by_function(0).bdf().device(), 1u);
  EXPECT_EQ(c.by_function(0).reads(), 5u);
  EXPECT_EQ(c.by_function(1).path(), v1::CONFIG_PATH_ECAM);
  ASSERT_EQ(c.by_register_size(), 2);
  EXPECT_EQ(c.by_register(1).offset(), 0x10u);
  EXPECT_EQ(c.by_register(1).writes(), 1u);
  const v1::ConfigStats absent = Config(/*registers=*/false, kAbsent);
  ASSERT_EQ(absent.by_function_size(), 1);
  EXPECT_EQ(absent.by_function(0).reads(), 2u);
  EXPECT_EQ(absent.by_register_size(), 0);
}

TEST_F(StatsCollectorTest, ConfigResetCoversAbsentFunctionsToo) {
  PioReads(kAbsent, 0, 3);
  PioReads(kGpu, 8, 4);
  collector_->Reset(kScopeConfig);
  PioReads(kAbsent, 0, 2);
  EXPECT_EQ(Config(false, kAbsent).by_function(0).reads(), 2u);
  EXPECT_EQ(Config().by_path(0).reads(), 2u);
  EXPECT_EQ(Config(true, kGpu).by_register_size(), 0);
}

TEST_F(StatsCollectorTest, MappingPerMemoryBarWithHistogramAndReset) {
  gpu_->Write(pci::cfg::kCommand, 2, 0);  // decode off: eager unmaps the three memory BARs
  v1::MappingStats m;
  collector_->CollectMapping(std::nullopt, &m);
  EXPECT_EQ(m.policy(), v1::BAR_POLICY_EAGER);
  ASSERT_EQ(m.bars_size(), 3);
  EXPECT_EQ(m.bars(1).bar(), 1u);
  EXPECT_EQ(m.bars(1).maps(), 1u);  // at hand-off
  EXPECT_EQ(m.bars(1).unmaps(), 1u);
  EXPECT_FALSE(m.bars(1).has_mapped_gpa());
  EXPECT_EQ(m.bars(1).address(), gpu_->BarAddress(gpu_->spec().bars[1]));
  EXPECT_EQ(m.bars(1).ioctl().count(), 2u);
  uint64_t in_buckets = 0;
  for (const auto& b : m.bars(1).ioctl().buckets()) in_buckets += b.count();
  EXPECT_EQ(in_buckets, 2u);
  EXPECT_EQ(m.totals().unmaps(), 3u);
  collector_->Reset(kScopeMapping);
  v1::MappingStats after;
  collector_->CollectMapping(kGpu, &after);
  EXPECT_EQ(after.totals().maps() + after.totals().unmaps(), 0u);
  EXPECT_EQ(after.bars_size(), 3);
}

TEST_F(StatsCollectorTest, WithoutAKvmSourceKvmStatsSayWhy) {
  v1::KvmStats k;
  collector_->CollectKvm(&k);
  EXPECT_FALSE(k.available());
  EXPECT_FALSE(k.unavailable_reason().empty());
}

}  // namespace
}  // namespace pcivmm::api
