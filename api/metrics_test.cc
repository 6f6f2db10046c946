#include "api/metrics.h"

#include <fstream>

#include "api/fake_vm_backend.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace pcivmm::api {
namespace {

v1::MetricsSample Sample() {
  v1::MetricsSample s;
  s.mutable_info()->set_state(v1::VM_STATE_PAUSED);
  s.mutable_info()->set_uptime_ns(1'500'000'000);
  s.mutable_info()->mutable_memory()->set_overhead_bytes(12345);
  s.mutable_info()->mutable_kvm()->set_flavour("pvm");
  s.mutable_info()->mutable_kvm()->set_where("direct");
  v1::BootProfile::Phase* phase = s.mutable_info()->mutable_boot_profile()->add_phases();
  phase->set_name("first_kvm_run");
  phase->set_ns(250'000'000);
  v1::ExitStats* e = s.mutable_stats()->mutable_exits();
  v1::ExitReasonCount* io = e->add_by_reason();
  io->set_reason("IO");
  io->set_count(974);
  v1::PortExitCount* port = e->add_by_port();
  port->set_port(0xCF8);
  port->set_writes(487);
  v1::MmioRegionExitCount* r = e->add_by_mmio_region();
  r->set_name("pci-\"ecam\"");
  r->set_reads(3);
  v1::BarMappingStats* bar = s.mutable_mapping()->add_bars();
  bar->mutable_bdf()->set_device(1);
  bar->set_device("gpu0");
  bar->set_bar(1);
  bar->set_maps(2);
  for (auto [lo, hi, n] : {std::tuple{1024, 2048, 1}, std::tuple{4096, 8192, 2}}) {
    v1::HistogramBucket* b = bar->mutable_ioctl()->add_buckets();
    b->set_lower_ns(static_cast<uint64_t>(lo));
    b->set_upper_ns(static_cast<uint64_t>(hi));
    b->set_count(static_cast<uint64_t>(n));
  }
  bar->mutable_ioctl()->set_count(3);
  bar->mutable_ioctl()->set_sum_ns(10000);
  return s;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsTest, PrometheusTextHasTypedFamiliesAndCumulativeBuckets) {
  const std::string t = RenderPrometheus(Sample());
  EXPECT_TRUE(Has(t, "# TYPE pcivmm_exits_total counter")) << t;
  EXPECT_TRUE(Has(t, "pcivmm_exits_total{reason=\"IO\"} 974"));
  EXPECT_TRUE(Has(t, "pcivmm_vm_state{state=\"PAUSED\"} 1"));
  EXPECT_TRUE(Has(t, "pcivmm_vm_state{state=\"RUNNING\"} 0"));
  EXPECT_TRUE(Has(t, "pcivmm_uptime_seconds 1.5"));
  EXPECT_TRUE(Has(t, "pcivmm_boot_phase_seconds{phase=\"first_kvm_run\"} 0.25"));
  EXPECT_TRUE(Has(t, "pcivmm_kvm_info{flavour=\"pvm\",where=\"direct\"} 1"));
  EXPECT_TRUE(Has(t, "pcivmm_memory_bytes{kind=\"overhead\"} 12345"));
  EXPECT_TRUE(Has(t, "pcivmm_pio_exits_total{port=\"0x0cf8\",direction=\"write\"} 487"));
  EXPECT_TRUE(Has(t, "pcivmm_mmio_exits_total{region=\"pci-\\\"ecam\\\"\",direction=\"read\"} 3"));
  const std::string bar = "bdf=\"00:01.0\",device=\"gpu0\",bar=\"1\"";
  EXPECT_TRUE(Has(t, "pcivmm_bar_operations_total{" + bar + ",op=\"map\"} 2"));
  EXPECT_TRUE(Has(t, "# TYPE pcivmm_bar_ioctl_seconds histogram"));
  EXPECT_TRUE(Has(t, "pcivmm_bar_ioctl_seconds_bucket{" + bar + ",le=\"2.048e-06\"} 1"));
  EXPECT_TRUE(Has(t, "pcivmm_bar_ioctl_seconds_bucket{" + bar + ",le=\"8.192e-06\"} 3"));
  EXPECT_TRUE(Has(t, "pcivmm_bar_ioctl_seconds_bucket{" + bar + ",le=\"+Inf\"} 3"));
  EXPECT_TRUE(Has(t, "pcivmm_bar_ioctl_seconds_count{" + bar + "} 3"));
  EXPECT_TRUE(Has(t, "pcivmm_bar_ioctl_seconds_sum{" + bar + "} 1e-05"));
}

TEST(MetricsTest, JsonLineIsOneLineThatParsesBack) {
  const std::string line = RenderJsonLine(Sample());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  v1::MetricsSample back;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &back).ok());
  EXPECT_EQ(back.stats().exits().by_reason(0).count(), 974u);
}

TEST(MetricsTest, FileWriterAppendsLinesAndAFinalOne) {
  testing::FakeVmBackend backend;
  backend.set_exits(8);
  const std::string path = ::testing::TempDir() + "/metrics.jsonl";
  std::remove(path.c_str());
  auto w = MetricsFileWriter::Start(path, absl::Milliseconds(10), &backend);
  ASSERT_TRUE(w.ok()) << w.status();
  while ((*w)->lines() < 2) absl::SleepFor(absl::Milliseconds(5));
  (*w)->Stop();
  const uint64_t written = (*w)->lines();
  std::ifstream in(path);
  std::string line;
  uint64_t n = 0;
  while (std::getline(in, line)) {
    v1::MetricsSample s;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(line, &s).ok()) << line;
    EXPECT_EQ(s.stats().exits().total(), 8u);
    ++n;
  }
  EXPECT_EQ(n, written);
  EXPECT_GE(n, 3u);
  EXPECT_FALSE(MetricsFileWriter::Start(path, absl::Microseconds(1), &backend).ok());
  backend.events().Close();
}

}  // namespace
}  // namespace pcivmm::api
