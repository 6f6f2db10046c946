#include "pci/access/ecam_trap.h"

#include "pci/le_bytes.h"

namespace pcivmm::pci {

void EcamConfigAccess::Read(uint64_t offset, absl::Span<uint8_t> data, int vcpu) {
  const EcamOffset e{offset};
  const auto width = static_cast<uint8_t>(data.size());
  StoreLe(bus_->Read(ConfigPath::kEcam, e.bdf(), e.reg(), width, vcpu), data);
}

void EcamConfigAccess::Write(uint64_t offset, absl::Span<const uint8_t> data, int vcpu) {
  const EcamOffset e{offset};
  bus_->Write(ConfigPath::kEcam, e.bdf(), e.reg(), static_cast<uint8_t>(data.size()), LoadLe(data),
              vcpu);
}

}  // namespace pcivmm::pci
