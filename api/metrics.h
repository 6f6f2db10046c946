// Metrics export: a snapshot of everything (MetricsSample), rendered as Prometheus text or
// as one JSON line, and a writer that appends a line to a file periodically.
#ifndef PCIVMM_API_METRICS_H_
#define PCIVMM_API_METRICS_H_

#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/vm_backend.h"

namespace pcivmm::api {

v1::MetricsSample SampleMetrics(const VmBackend& backend);

// Prometheus text exposition format 0.0.4: counters *_total, gauges, the ioctl histogram
// in seconds with cumulative le buckets.
std::string RenderPrometheus(const v1::MetricsSample& sample);

// The proto3 JSON mapping of the sample on one line (no trailing newline).
std::string RenderJsonLine(const v1::MetricsSample& sample);

// Appends RenderJsonLine(SampleMetrics()) + "\n" to a file every `interval`, and once more
// when stopped (so the last line holds the final counters).
class MetricsFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsFileWriter>> Start(const std::string& path,
                                                                  absl::Duration interval,
                                                                  const VmBackend* backend);
  ~MetricsFileWriter();  // Stop()
  void Stop();
  uint64_t lines() const;

 private:
  MetricsFileWriter(FILE* file, absl::Duration interval, const VmBackend* backend)
      : file_(file, &std::fclose), interval_(interval), backend_(*backend) {}
  void Loop();
  void WriteLine();

  std::unique_ptr<FILE, int (*)(FILE*)> file_;
  const absl::Duration interval_;
  const VmBackend& backend_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t lines_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_METRICS_H_
