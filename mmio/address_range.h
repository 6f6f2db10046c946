// One checked helper for guest- and user-controlled address arithmetic.
#ifndef PCIVMM_MMIO_ADDRESS_RANGE_H_
#define PCIVMM_MMIO_ADDRESS_RANGE_H_

#include <cstdint>
#include <optional>

namespace pcivmm::mmio {

// a + b, or nullopt when the sum wraps past 2^64.
constexpr std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  if (b > UINT64_MAX - a) return std::nullopt;
  return a + b;
}

// A half-open range [base, base + size). Construct through Make(): an empty range or one
// that wraps past 2^64 is rejected, so end() never overflows.
class AddressRange {
 public:
  static constexpr std::optional<AddressRange> Make(uint64_t base, uint64_t size) {
    if (size == 0 || !CheckedAdd(base, size)) return std::nullopt;
    return AddressRange(base, size);
  }
  constexpr uint64_t base() const { return base_; }
  constexpr uint64_t size() const { return size_; }
  constexpr uint64_t end() const { return base_ + size_; }
  // True when every byte of [addr, addr + len) lies inside; false on wrap-around.
  constexpr bool Contains(uint64_t addr, uint64_t len) const {
    auto last = CheckedAdd(addr, len);
    return addr >= base_ && last && *last <= end();
  }
  constexpr bool Overlaps(const AddressRange& o) const {
    return base_ < o.end() && o.base_ < end();
  }
  constexpr bool operator==(const AddressRange&) const = default;

 private:
  constexpr AddressRange(uint64_t base, uint64_t size) : base_(base), size_(size) {}
  uint64_t base_;
  uint64_t size_;
};

}  // namespace pcivmm::mmio

#endif  // PCIVMM_MMIO_ADDRESS_RANGE_H_
