// One interrupt input of the guest's interrupt controller, driven by an emulated device.
#ifndef PCIVMM_VMM_DEVICES_IRQ_LINE_H_
#define PCIVMM_VMM_DEVICES_IRQ_LINE_H_

namespace pcivmm::devices {

// The machine implements it with KVM_IRQ_LINE on the in-kernel irqchip; tests use
// FakeIrqLine (vmm/devices/fake_irq_line.h). Devices call Set() with the level their interrupt
// output should have now (true = asserted), possibly from several vCPU threads, always under the
// device's own lock, so calls for one line are ordered. Implementations must not call back
// into the device.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void Set(bool level) = 0;
};

}  // namespace pcivmm::devices

#endif  // PCIVMM_VMM_DEVICES_IRQ_LINE_H_
