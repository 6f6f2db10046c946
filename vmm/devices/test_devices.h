// Devices at the test addresses of pcivmm_guest_abi.h, for the freestanding test guests.
#ifndef PCIVMM_VMM_DEVICES_TEST_DEVICES_H_
#define PCIVMM_VMM_DEVICES_TEST_DEVICES_H_

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "guest-images/include/pcivmm_guest_abi.h"
#include "mmio/bus.h"
#include "mmio/io_device.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::devices::testing {

// A register file: reads return what was last written at each byte.
class RegisterFile : public mmio::IoDevice {
 public:
  explicit RegisterFile(size_t size) : bytes_(size, 0) {}
  std::string_view Name() const override { return "test-registers"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int /*vcpu*/) override {
    absl::MutexLock lock(&mu_);
    std::memcpy(data.data(), bytes_.data() + offset, data.size());
  }
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int /*vcpu*/) override {
    absl::MutexLock lock(&mu_);
    std::memcpy(bytes_.data() + offset, data.data(), data.size());
  }

 private:
  absl::Mutex mu_;
  std::vector<uint8_t> bytes_;
};

// A byte stream: keeps every byte written; reads return 0, 1, 2, ... (mod 256).
class StreamPort : public mmio::IoDevice {
 public:
  std::string_view Name() const override { return "test-stream"; }
  void Read(uint64_t /*offset*/, absl::Span<uint8_t> data, int /*vcpu*/) override {
    absl::MutexLock lock(&mu_);
    for (auto& b : data) b = static_cast<uint8_t>(reads_++);
  }
  void Write(uint64_t /*offset*/, absl::Span<const uint8_t> data, int /*vcpu*/) override {
    absl::MutexLock lock(&mu_);
    written_.insert(written_.end(), data.begin(), data.end());
  }
  std::vector<uint8_t> written() {
    absl::MutexLock lock(&mu_);
    return written_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint8_t> written_;
  uint64_t reads_ = 0;
};

// Parses the "REPORT key=value" lines a test guest prints.
inline std::map<std::string, uint64_t> ParseReports(const std::string& console) {
  std::map<std::string, uint64_t> out;
  size_t pos = 0;
  while ((pos = console.find("REPORT ", pos)) != std::string::npos) {
    const size_t eq = console.find('=', pos);
    const size_t nl = console.find('\n', pos);
    if (eq == std::string::npos || nl == std::string::npos || eq > nl) break;
    out[console.substr(pos + 7, eq - pos - 7)] = std::stoull(console.substr(eq + 1, nl - eq - 1));
    pos = nl;
  }
  return out;
}

// Registers the echo registers, the stream port and the scratch MMIO page.
inline absl::Status AttachTestDevices(mmio::Bus& pio, mmio::Bus& mmio) {
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(PCIVMM_TEST_PIO_PORT, 8, std::make_shared<RegisterFile>(8)).status());
  PCIVMM_RETURN_IF_ERROR(
      pio.Register(PCIVMM_TEST_STREAM_PORT, 1, std::make_shared<StreamPort>()).status());
  return mmio.Register(PCIVMM_TEST_MMIO_BASE, 0x1000, std::make_shared<RegisterFile>(0x1000))
      .status();
}

}  // namespace pcivmm::devices::testing

#endif  // PCIVMM_VMM_DEVICES_TEST_DEVICES_H_
