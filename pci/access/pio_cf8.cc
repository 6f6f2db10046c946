#include "pci/access/pio_cf8.h"

#include <algorithm>

#include "pci/le_bytes.h"

namespace pcivmm::pci {
namespace {

constexpr uint64_t kAddressPortOffset = 0;  // 0xCF8 relative to the registered range
constexpr uint64_t kDataPortOffset = 4;     // 0xCFC

}  // namespace

void PioConfigAccess::Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) {
  std::fill(data.begin(), data.end(), 0xFF);
  if (!enabled()) return;
  if (offset == kAddressPortOffset && data.size() == 4) {
    StoreLe(address_.load(std::memory_order_relaxed), data);
    return;
  }
  if (offset < kDataPortOffset) return;  // partial CONFIG_ADDRESS: not the register
  const PioConfigAddress a{address_.load(std::memory_order_relaxed)};
  if (!a.enabled()) return;
  const auto reg = static_cast<uint16_t>(a.reg() + (offset - kDataPortOffset));
  const auto width = static_cast<uint8_t>(data.size());
  StoreLe(bus_->Read(ConfigPath::kPio, a.bdf(), reg, width, vcpu), data);
}

void PioConfigAccess::Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) {
  if (!enabled()) return;
  if (offset == kAddressPortOffset && data.size() == 4) {
    address_.store(LoadLe(data), std::memory_order_relaxed);
    return;
  }
  if (offset < kDataPortOffset) return;
  const PioConfigAddress a{address_.load(std::memory_order_relaxed)};
  if (!a.enabled()) return;
  const auto reg = static_cast<uint16_t>(a.reg() + (offset - kDataPortOffset));
  bus_->Write(ConfigPath::kPio, a.bdf(), reg, static_cast<uint8_t>(data.size()), LoadLe(data),
              vcpu);
}

}  // namespace pcivmm::pci
