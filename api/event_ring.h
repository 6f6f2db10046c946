// A bounded multi-producer queue that never blocks a producer: TryPush fails when full.
#ifndef PCIVMM_API_EVENT_RING_H_
#define PCIVMM_API_EVENT_RING_H_

#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <optional>

namespace pcivmm::api {

// D. Vyukov's bounded MPMC queue: each cell carries a sequence number that says whose turn
// it is (a producer's for lap n when seq == pos, the consumer's when seq == pos + 1). A
// producer claims a position with one CAS and publishes with a release store; nothing waits.
// `T` must be trivially copyable. Capacity is rounded up to a power of two.
template <typename T>
class EventRing {
 public:
  explicit EventRing(size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1), cells_(new Cell[mask_ + 1]) {
    for (size_t i = 0; i <= mask_; ++i) cells_[i].seq.store(i, std::memory_order_relaxed);
  }

  size_t capacity() const { return mask_ + 1; }

  bool TryPush(const T& value) {
    size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      const size_t seq = cell.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          cell.value = value;
          cell.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full: the cell still holds last lap's value
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  std::optional<T> TryPop() {
    size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Cell& cell = cells_[pos & mask_];
      const size_t seq = cell.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - (pos + 1));
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          T value = cell.value;
          cell.seq.store(pos + mask_ + 1, std::memory_order_release);
          return value;
        }
      } else if (diff < 0) {
        return std::nullopt;  // empty
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

 private:
  struct Cell {
    std::atomic<size_t> seq;
    T value;
  };
  // Producers and the consumer on different cache lines; mask_ and cells_ are read-only.
  alignas(64) std::atomic<size_t> tail_{0};
  alignas(64) std::atomic<size_t> head_{0};
  const size_t mask_;
  std::unique_ptr<Cell[]> cells_;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_EVENT_RING_H_
