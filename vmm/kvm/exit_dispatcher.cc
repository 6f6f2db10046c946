#include "vmm/kvm/exit_dispatcher.h"

#include "absl/strings/str_format.h"
#include "vmm/base/log.h"

namespace pcivmm::kvm {

std::optional<StopReason> ExitDispatcher::Dispatch(kvm_run* run) {
  stats_->CountExit(run->exit_reason);
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      return HandleIo(run);
    case KVM_EXIT_MMIO:
      HandleMmio(run);
      return std::nullopt;
    case KVM_EXIT_HLT:
      return StopReason{0, absl::StrFormat("vcpu %d halted", vcpu_)};
    case KVM_EXIT_SHUTDOWN:
      return StopReason{kExitStatusTripleFault,
                        absl::StrFormat("vcpu %d: guest shut down (triple fault)", vcpu_)};
    case KVM_EXIT_FAIL_ENTRY:
      return StopReason{kExitStatusFailEntry,
                        absl::StrFormat("vcpu %d: VM entry failed, hardware reason %#x", vcpu_,
                                        run->fail_entry.hardware_entry_failure_reason)};
    case KVM_EXIT_INTERNAL_ERROR:
      return StopReason{kExitStatusInternalError,
                        absl::StrFormat("vcpu %d: KVM internal error, suberror %d", vcpu_,
                                        run->internal.suberror)};
    case KVM_EXIT_SYSTEM_EVENT:
      return HandleSystemEvent(run);
    default:
      return StopReason{kExitStatusUnhandledExit,
                        absl::StrFormat("vcpu %d: unhandled exit reason %d (%s)", vcpu_,
                                        run->exit_reason, ExitReasonName(run->exit_reason))};
  }
}

// A string instruction (rep ins/outs) exits once with `count` items of `size` bytes packed
// at data_offset; each item is one access to the port, in order.
std::optional<StopReason> ExitDispatcher::HandleIo(kvm_run* run) {
  const auto& io = run->io;
  const size_t bytes = size_t{io.size} * io.count;
  if (io.size == 0 || io.size > 4 || io.data_offset > run_size_ ||
      bytes > run_size_ - io.data_offset) {
    return StopReason{kExitStatusUnhandledExit,
                      absl::StrFormat("vcpu %d: malformed IO exit (size %d count %d offset %d)",
                                      vcpu_, io.size, io.count, io.data_offset)};
  }
  // The data area lies inside the kvm_run mapping (checked above) and is byte-addressed.
  uint8_t* data = reinterpret_cast<uint8_t*>(run) + io.data_offset;
  const bool out = io.direction == KVM_EXIT_IO_OUT;
  stats_->CountPio(io.port, out ? mmio::Direction::kWrite : mmio::Direction::kRead);
  for (uint32_t i = 0; i < io.count; ++i) {
    auto item = absl::MakeSpan(data + size_t{i} * io.size, io.size);
    if (out) {
      pio_.Write(io.port, item, vcpu_);
    } else {
      pio_.Read(io.port, item, vcpu_);
    }
  }
  return std::nullopt;
}

void ExitDispatcher::HandleMmio(kvm_run* run) {
  auto& m = run->mmio;
  const uint32_t len = m.len <= sizeof(m.data) ? m.len : sizeof(m.data);
  auto data = absl::MakeSpan(m.data, len);
  const bool is_write = m.is_write != 0;
  const int region =
      is_write ? mmio_.Write(m.phys_addr, data, vcpu_) : mmio_.Read(m.phys_addr, data, vcpu_);
  stats_->CountMmio(region, is_write ? mmio::Direction::kWrite : mmio::Direction::kRead);
}

StopReason ExitDispatcher::HandleSystemEvent(const kvm_run* run) const {
  switch (run->system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
      return {0, absl::StrFormat("vcpu %d: guest powered off", vcpu_)};
    case KVM_SYSTEM_EVENT_RESET:
      return {0, absl::StrFormat("vcpu %d: guest requested reset", vcpu_)};
    case KVM_SYSTEM_EVENT_CRASH:
      return {kExitStatusGuestCrash, absl::StrFormat("vcpu %d: guest crashed", vcpu_)};
    default:
      return {kExitStatusUnhandledExit,
              absl::StrFormat("vcpu %d: system event %d", vcpu_, run->system_event.type)};
  }
}

}  // namespace pcivmm::kvm
