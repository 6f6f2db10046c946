// An interrupt line from a device model into the interrupt controller.
#ifndef PCIVMM_VMM_IRQ_LINE_H_
#define PCIVMM_VMM_IRQ_LINE_H_

namespace pcivmm {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Drives the line high (asserted) or low. May be called from any vCPU thread.
  virtual void Set(bool level) = 0;
};

}  // namespace pcivmm

#endif  // PCIVMM_VMM_IRQ_LINE_H_
