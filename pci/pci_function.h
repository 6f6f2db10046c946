#ifndef PCIVMM_PCI_PCI_FUNCTION_H_
#define PCIVMM_PCI_PCI_FUNCTION_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "pci/bar_decode.h"
#include "pci/bdf.h"
#include "pci/bridge.h"
#include "pci/config_space.h"
#include "pci/device_spec.h"

namespace pcivmm::pci {

class PciFunction;

// Told about every write that touches the command register or a BAR, after it took effect.
// Called with the function's write lock held (writes to one function are serialised, so
// the observer sees them in order) but not its register lock: it may call Read().
class ConfigWriteObserver {
 public:
  virtual ~ConfigWriteObserver() = default;
  virtual void OnConfigWrite(PciFunction& function, uint16_t offset, uint8_t width) = 0;
};

// A real device behind a function (VFIO passthrough): the bits it provides are read from it,
// the rest (what the VMM owns: BARs, the command register's decode bits, ...) from the
// function's emulated ConfigSpace. Set before the VM runs; called without the function's
// register lock.
class ConfigPassthrough {
 public:
  virtual ~ConfigPassthrough() = default;
  // The bits of the dword at `dword` (4-byte aligned) that come from the device.
  virtual uint32_t DeviceBits(uint16_t dword) const = 0;
  // A read of the device itself; may be called from several vCPU threads at once.
  virtual uint32_t ReadDevice(uint16_t offset, uint8_t width) const = 0;
  // After a write took effect in the emulation, with the function's write lock held (before
  // the write observer): forwards the device's bits and acts on the VMM-owned ones.
  virtual void OnWrite(uint16_t offset, uint8_t width, uint32_t value) = 0;
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
  // The emulated registers only (a passthrough function's VMM-owned view); lock-free.
  uint32_t ReadEmulated(uint16_t offset, uint8_t width) const ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void Write(uint16_t offset, uint8_t width, uint32_t value);
  void SetWriteObserver(ConfigWriteObserver* observer);
  // Before the VM runs (reads take no lock); nullptr: a purely emulated function.
  void SetPassthrough(ConfigPassthrough* passthrough);
  // Device-model set-up of an emulated register (a passthrough function's MSI capability).
  void EmulateRegister(uint16_t offset, uint8_t width, uint32_t value, uint32_t writable);
  // Copies the device's bits of the dword at `dword` into the function's page (the ECAM
  // shadow of a passthrough function that serves reads from it).
  void MirrorDevice(uint16_t dword);

  // Firmware role (before boot): place a BAR or the ROM, set the command register.
  void ProgramBar(const BarSpec& bar, uint64_t address);
  void ProgramRom(uint64_t address);
  void SetCommand(uint16_t command);
  void SetMultiFunction();

  // The registers that decide where the BARs decode, read together (pci/bar_decode.h).
  BarRegisters bar_registers() const;
  // Where the function answers: bus 0, or the secondary bus its parent bridge has now (0
  // while unnumbered; PciBus::AddressOf also checks the bridges above forward it).
  Bdf address() const;
  // The bridge the function sits behind (nullptr: bus 0); set by PciBus when it places the
  // function (before the VM runs).
  const PciFunction* parent() const { return parent_; }
  void SetParent(const PciFunction* bridge) { parent_ = bridge; }
  // A port (spec().port != kNone) is a PCI-to-PCI bridge with a type-1 header (pci/bridge.h).
  bool is_bridge() const { return spec_.port != PortKind::kNone; }
  // Its bus numbers and windows, read together, lock-free; zeros for an endpoint.
  BridgeRegisters bridge_registers() const;
  // Firmware role (before boot): a bridge's bus numbers and windows (closed when nullopt).
  void ProgramBridgeBuses(const BridgeBuses& buses);
  void ProgramBridgeWindows(const BridgeWindows& windows);
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
  uint8_t bar_high_pending_ ABSL_GUARDED_BY(mu_) = 0;  // see NoteBarWrite
  ConfigPassthrough* passthrough_ = nullptr;           // set before the VM runs
  const PciFunction* parent_ = nullptr;                // the bridge above; set before the VM runs
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_PCI_FUNCTION_H_
