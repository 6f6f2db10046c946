#ifndef PCIVMM_VMM_DEVICES_DEBUG_PORTS_H_
#define PCIVMM_VMM_DEVICES_DEBUG_PORTS_H_

#include <cstdio>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "mmio/io_device.h"
#include "vmm/kvm/run_control.h"

namespace pcivmm::devices {

// The guest's debug console (port 0xE9): bytes written are kept and echoed to `echo`.
class DebugConsole : public mmio::IoDevice {
 public:
  explicit DebugConsole(FILE* echo) : echo_(echo) {}
  std::string_view Name() const override { return "debug-console"; }
  // Reads return 0xE9, the Bochs convention by which a guest detects the port.
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;
  std::string output() const;

 private:
  FILE* const echo_;
  mutable absl::Mutex mu_;
  std::string output_ ABSL_GUARDED_BY(mu_);
};

// The exit port: a write of up to 4 bytes stops the VM with that value as the exit status.
class ExitPort : public mmio::IoDevice {
 public:
  explicit ExitPort(kvm::RunControl* control) : control_(control) {}
  std::string_view Name() const override { return "exit-port"; }
  void Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) override;
  void Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) override;

 private:
  kvm::RunControl* const control_;
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_DEBUG_PORTS_H_
