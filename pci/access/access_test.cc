#include <vector>

#include "gtest/gtest.h"
#include "mmio/bus.h"
#include "pci/access/ecam_trap.h"
#include "pci/access/pio_cf8.h"
#include "pci/le_bytes.h"

namespace pcivmm::pci {
namespace {

class ConfigAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bus = PciBus::Create(2);
    ASSERT_TRUE(bus.ok());
    pci_ = std::move(*bus);
    ASSERT_TRUE(pci_->AddDevice(HostBridgeDevice()).ok());
    ASSERT_TRUE(pci_->AddDevice(GpuLikeDevice("gpu", 3)).ok());
    pio_ = std::make_shared<PioConfigAccess>(pci_.get());
    ecam_ = std::make_shared<EcamConfigAccess>(pci_.get());
    ASSERT_TRUE(ports_.Register(kPioConfigAddressPort, 8, pio_).ok());
    ASSERT_TRUE(mmio_.Register(kEcamBase, ecam_->window_size(), ecam_).ok());
  }
  uint32_t PioRead(Bdf b, uint16_t reg, size_t width) {
    Latch(0x80000000u | uint32_t{b.bus} << 16 | uint32_t{b.device} << 11 |
          uint32_t{b.function} << 8 | (reg & 0xFC));
    std::vector<uint8_t> d(width);
    ports_.Read(kPioConfigDataPort + (reg & 3), absl::MakeSpan(d), 0);
    return LoadLe(d);
  }
  void Latch(uint32_t v) {
    uint8_t d[4];
    StoreLe(v, absl::MakeSpan(d));
    ports_.Write(kPioConfigAddressPort, d, 0);
  }
  uint32_t EcamRead(Bdf b, uint16_t reg, size_t width) {
    std::vector<uint8_t> d(width);
    mmio_.Read(kEcamBase + (uint64_t{b.bus} << 20 | uint64_t{b.device} << 15 |
                            uint64_t{b.function} << 12 | reg),
               absl::MakeSpan(d), 0);
    return LoadLe(d);
  }
  std::unique_ptr<PciBus> pci_;
  std::shared_ptr<PioConfigAccess> pio_;
  std::shared_ptr<EcamConfigAccess> ecam_;
  mmio::Bus ports_{"pio", 0x10000};
  mmio::Bus mmio_{"mmio", UINT64_MAX};
};

constexpr Bdf kGpu{0, 3, 0};

TEST_F(ConfigAccessTest, BothPathsReadTheSameRegistersAtEveryWidth) {
  for (int r : {0x00, 0x02, 0x04, 0x08, 0x0A, 0x0E, 0x10, 0x2C, 0x34, 0x3C, 0x3D}) {
    const auto reg = static_cast<uint16_t>(r);
    for (size_t width : {1u, 2u, 4u}) {
      if ((reg & 3) + width > 4) continue;
      EXPECT_EQ(PioRead(kGpu, reg, width), EcamRead(kGpu, reg, width)) << reg << " " << width;
    }
  }
  EXPECT_EQ(EcamRead(kGpu, 0, 4), 0x20B510DEu);
}

TEST_F(ConfigAccessTest, AbsentFunctionsReadAllOnesOnBothPaths) {
  EXPECT_EQ(PioRead({0, 4, 0}, 0, 4), 0xFFFFFFFFu);
  EXPECT_EQ(EcamRead({0, 3, 1}, 0, 2), 0xFFFFu);
  EXPECT_EQ(EcamRead({1, 0, 0}, 0, 4), 0xFFFFFFFFu);  // bus 1 decoded, empty
}

TEST_F(ConfigAccessTest, EcamReachesExtendedSpacePioCannot) {
  EXPECT_EQ(EcamRead(kGpu, 0x100, 4) & 0xFFFF, 0x0003u);
  // The type-1 register field is 8 bits: 0x100 wraps to 0x00.
  EXPECT_EQ(PioRead(kGpu, 0x100 & 0xFC, 4), EcamRead(kGpu, 0, 4));
}

TEST_F(ConfigAccessTest, EcamEightByteAndCrossingAccessesAreMalformed) {
  uint8_t d8[8] = {};
  mmio_.Read(kEcamBase + (3 << 15), absl::MakeSpan(d8), 0);
  for (uint8_t b : d8) EXPECT_EQ(b, 0xFF);
  uint8_t d4[4] = {};
  mmio_.Read(kEcamBase + (3 << 15) + 2, absl::MakeSpan(d4), 0);
  for (uint8_t b : d4) EXPECT_EQ(b, 0xFF);
  EXPECT_EQ(pci_->stats().malformed(ConfigPath::kEcam), 2u);
  const uint8_t w[4] = {0xFF, 0xFF, 0xFF, 0xFF};
  mmio_.Write(kEcamBase + (3 << 15) + 0x10 + 2, w, 0);  // crosses into BAR1
  EXPECT_EQ(EcamRead(kGpu, 0x10, 4), 0u);
  EXPECT_EQ(pci_->stats().malformed(ConfigPath::kEcam), 3u);
}

TEST_F(ConfigAccessTest, AddressLatchNeedsDwordAccessAndEnableBit) {
  Latch(0x80001800);  // 00:03.0 reg 0
  uint8_t d[4];
  ports_.Read(kPioConfigAddressPort, absl::MakeSpan(d), 0);
  EXPECT_EQ(LoadLe(d), 0x80001800u);
  const uint8_t one = 0x01;
  ports_.Write(kPioConfigAddressPort + 3, absl::MakeConstSpan(&one, 1), 0);  // not the latch
  ports_.Read(kPioConfigAddressPort, absl::MakeSpan(d), 0);
  EXPECT_EQ(LoadLe(d), 0x80001800u);
  Latch(0x00001800);  // enable bit clear: data reads all-ones
  ports_.Read(kPioConfigDataPort, absl::MakeSpan(d), 0);
  EXPECT_EQ(LoadLe(d), 0xFFFFFFFFu);
}

TEST_F(ConfigAccessTest, DisabledPioFailsTheType1Probe) {
  pio_->set_enabled(false);
  Latch(0x80000000);
  uint8_t d[4];
  ports_.Read(kPioConfigAddressPort, absl::MakeSpan(d), 0);
  EXPECT_NE(LoadLe(d), 0x80000000u);
  EXPECT_EQ(PioRead(kGpu, 0, 4), 0xFFFFFFFFu);
  EXPECT_EQ(pci_->stats().accesses(ConfigPath::kPio, mmio::Direction::kRead), 0u);
}

TEST_F(ConfigAccessTest, CountsByPathDirectionAndRegister) {
  PioRead(kGpu, 0x10, 4);
  PioRead(kGpu, 0x12, 2);
  EcamRead(kGpu, 0x10, 4);
  EXPECT_EQ(pci_->stats().accesses(ConfigPath::kPio, mmio::Direction::kRead), 2u);
  EXPECT_EQ(pci_->stats().accesses(ConfigPath::kEcam, mmio::Direction::kRead), 1u);
  EXPECT_EQ(pci_->stats().register_accesses(ConfigPath::kPio, mmio::Direction::kRead, kGpu, 0x10),
            2u);
  EXPECT_EQ(pci_->stats().register_accesses(ConfigPath::kEcam, mmio::Direction::kRead, kGpu, 0x13),
            1u);
  PioRead(kGpu, 0x3C, 1);
  EXPECT_EQ(pci_->stats().function_accesses(ConfigPath::kPio, mmio::Direction::kRead, kGpu), 3u);
  EXPECT_EQ(pci_->stats().function_accesses(ConfigPath::kPio, mmio::Direction::kWrite, kGpu), 0u);
  EXPECT_EQ(pci_->stats().function_accesses(ConfigPath::kPio, mmio::Direction::kRead, Bdf{0, 9, 0}),
            0u);
}

class RecordingTracer : public ConfigTracer {
 public:
  void OnConfigAccess(const ConfigAccess& a) override { seen.push_back(a); }
  std::vector<ConfigAccess> seen;
};

TEST_F(ConfigAccessTest, TracerSeesEveryTrappedAccess) {
  RecordingTracer t;
  pci_->SetTracer(&t);
  EcamRead(kGpu, 0x0, 2);
  const uint8_t w[2] = {0x06, 0x00};
  mmio_.Write(kEcamBase + (3 << 15) + 4, w, 1);
  pci_->SetTracer(nullptr);
  ASSERT_EQ(t.seen.size(), 2u);
  EXPECT_EQ(t.seen[0].value, 0x10DEu);
  EXPECT_EQ(t.seen[1].direction, mmio::Direction::kWrite);
  EXPECT_EQ(t.seen[1].reg, 4);
  EXPECT_EQ(t.seen[1].vcpu, 1);
  EXPECT_EQ(t.seen[1].bdf, kGpu);
}

// Guest faults at the edges: a type-1 access to a bus the segment does not decode, and ECAM
// accesses just past the window's end, read all-ones and write nothing.
TEST_F(ConfigAccessTest, BusesBeyondTheSegmentAndBytesPastTheWindowReadAllOnes) {
  EXPECT_EQ(PioRead({5, 3, 0}, 0, 4), 0xFFFFFFFFu);  // the fixture decodes buses 0..1
  EXPECT_EQ(PioRead({255, 0, 0}, 0, 2), 0xFFFFu);
  std::vector<uint8_t> d(4);
  const uint64_t end = kEcamBase + ecam_->window_size();
  const uint64_t unclaimed = mmio_.unclaimed_reads();
  mmio_.Read(end, absl::MakeSpan(d), 0);
  EXPECT_EQ(LoadLe(d), 0xFFFFFFFFu);
  mmio_.Read(end - 2, absl::MakeSpan(d), 0);  // straddles the end
  EXPECT_EQ(LoadLe(d), 0xFFFFFFFFu);
  EXPECT_EQ(mmio_.unclaimed_reads(), unclaimed + 2);
  const uint8_t w[4] = {0, 0, 0, 0};
  mmio_.Write(end - 2, w, 0);  // dropped: the last function's config is untouched
  EXPECT_EQ(mmio_.unclaimed_writes(), 1u);
  EXPECT_EQ(EcamRead(kGpu, 0, 4), PioRead(kGpu, 0, 4));
}

TEST_F(ConfigAccessTest, DuplicateSlotIsRejected) {
  EXPECT_EQ(pci_->AddDevice(GpuLikeDevice("again", 3)).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(ConfigAccessTest, MultiFunctionBitIsSetOnFunctionZero) {
  DeviceSpec f1 = GpuLikeDevice("audio", 3);
  f1.function = 1;
  ASSERT_TRUE(pci_->AddDevice(f1).ok());
  EXPECT_EQ(EcamRead(kGpu, cfg::kHeaderType, 1), 0x80u);
}

}  // namespace
}  // namespace pcivmm::pci
