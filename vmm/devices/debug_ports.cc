#include "vmm/devices/debug_ports.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace pcivmm::devices {

void DebugConsole::Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) {
  std::fill(data.begin(), data.end(), 0xE9);
}

void DebugConsole::Write(uint64_t /*offset*/, absl::Span<const uint8_t> data, int /*vcpu*/) {
  absl::MutexLock lock(&mu_);
  output_.append(data.begin(), data.end());
  if (echo_ != nullptr) {
    std::fwrite(data.data(), 1, data.size(), echo_);
    if (data.back() == '\n') std::fflush(echo_);
  }
}

std::string DebugConsole::output() const {
  absl::MutexLock lock(&mu_);
  return output_;
}

void ExitPort::Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) {
  std::fill(data.begin(), data.end(), 0xFF);
}

void ExitPort::Write(uint64_t /*offset*/, absl::Span<const uint8_t> data, int vcpu) {
  uint32_t value = 0;
  for (size_t i = 0; i < data.size() && i < 4; ++i) value |= uint32_t{data[i]} << (8 * i);
  control_->RequestStop({static_cast<int>(value & 0xFF),
                         absl::StrFormat("vcpu %d: guest wrote exit status %d", vcpu, value)});
}

}  // namespace pcivmm::devices
