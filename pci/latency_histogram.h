#ifndef PCIVMM_PCI_LATENCY_HISTOGRAM_H_
#define PCIVMM_PCI_LATENCY_HISTOGRAM_H_

#include <array>
#include <bit>
#include <cstdint>

namespace pcivmm::pci {

// Durations in ns: count, min, max, sum and a log2 histogram (bucket i holds [2^i, 2^(i+1)),
// bucket 0 also holds 0). Not thread-safe: the owner locks.
struct LatencyHistogram {
  uint64_t count = 0;
  uint64_t min_ns = 0;
  uint64_t max_ns = 0;
  uint64_t sum_ns = 0;
  std::array<uint64_t, 64> buckets{};

  void Add(uint64_t ns) {
    min_ns = count == 0 || ns < min_ns ? ns : min_ns;
    max_ns = ns > max_ns ? ns : max_ns;
    ++count;
    sum_ns += ns;
    ++buckets[ns == 0 ? 0 : static_cast<size_t>(std::bit_width(ns) - 1)];
  }

  void Merge(const LatencyHistogram& o) {
    if (o.count == 0) return;
    min_ns = count == 0 || o.min_ns < min_ns ? o.min_ns : min_ns;
    max_ns = o.max_ns > max_ns ? o.max_ns : max_ns;
    count += o.count;
    sum_ns += o.sum_ns;
    for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
  }
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_LATENCY_HISTOGRAM_H_
