#ifndef PCIVMM_PCI_PCI_FUNCTION_H_
#define PCIVMM_PCI_PCI_FUNCTION_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "pci/config_space.h"
#include "pci/device_spec.h"

namespace pcivmm {

class PciFunction;

// Told about every write that touches the command register or a BAR, after it took effect.
// Called with the function's write lock held (writes to one function are serialised, so
// the observer sees them in order) but not its register lock: it may call Read().
class ConfigWriteObserver {
 public:
  virtual ~ConfigWriteObserver() = default;
  virtual void OnConfigWrite(PciFunction& function, uint16_t offset, uint8_t width) = 0;
};

// An emulated PCI function built from a DeviceSpec: a type-0 header, BARs with the sizing
// behaviour of the spec, and the declared capabilities. Thread-safe: mutations hold mu_;
// guest writes also hold write_mu_ across the write and its observer call (lock order:
// write_mu_, then mu_, then whatever the observer takes); reads take no lock.
class PciFunction {
 public:
  // `storage`: kConfigSpaceSize bytes, 4-byte aligned, outliving the function.
  PciFunction(DeviceSpec spec, absl::Span<uint8_t> storage);

  uint32_t Read(uint16_t offset, uint8_t width) const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void Write(uint16_t offset, uint8_t width, uint32_t value);
  void SetWriteObserver(ConfigWriteObserver* observer);

  // Firmware role (before boot): place a BAR or the ROM, set the command register.
  void ProgramBar(const BarSpec& bar, uint64_t address);
  void ProgramRom(uint64_t address);
  void SetCommand(uint16_t command);
  void SetMultiFunction();

  // The address a BAR decodes at (as programmed, type bits stripped).
  uint64_t BarAddress(const BarSpec& bar) const;
  uint64_t RomAddress() const;
  const DeviceSpec& spec() const { return spec_; }

 private:
  void InitHeader() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InitBar(const BarSpec& bar) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void InitCapabilities() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DeviceSpec spec_;
  absl::Mutex write_mu_;
  ConfigWriteObserver* observer_ ABSL_GUARDED_BY(write_mu_) = nullptr;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(write_mu_);
  ConfigSpace config_ ABSL_GUARDED_BY(mu_);
};

inline uint16_t BarOffset(int index) { return static_cast<uint16_t>(cfg::kBar0 + 4 * index); }

}  // namespace pcivmm

#endif  // PCIVMM_PCI_PCI_FUNCTION_H_
