// What the gRPC service needs from a VM. The daemon's VmHost implements it on a real KVM
// machine; unit tests implement it with a fake. The service validates every request before
// calling in, so implementations see only well-formed arguments (present functions, widths
// 1/2/4, aligned offsets), but they must stay safe under concurrent calls.
#ifndef PCIVMM_API_VM_BACKEND_H_
#define PCIVMM_API_VM_BACKEND_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "api/event_hub.h"
#include "api/vm_state.h"
#include "pci/bar_mapper.h"
#include "pci/bdf.h"
#include "pcivmm/v1/vm_service.pb.h"

namespace pcivmm::api {

// ResetStats scopes (bits).
enum StatsScopeBit : uint32_t {
  kScopeExits = 1,
  kScopeConfig = 2,
  kScopeMapping = 4,
  kScopeKvm = 8,
  kAllScopes = 15,
};

struct StatsQuery {
  bool config_registers = false;
  bool kvm = false;
  std::optional<pci::Bdf> bdf;  // a bus-0 function
};

class VmBackend {
 public:
  virtual ~VmBackend() = default;

  virtual VmState state() const = 0;
  // Everything but `state`; the service fills that from state().
  virtual v1::GetVmInfoResponse Info() const = 0;
  virtual int bus_count() const = 0;
  virtual bool HasFunction(pci::Bdf bdf) const = 0;

  // Life cycle. FailedPrecondition when the state does not allow it.
  virtual absl::Status Pause() = 0;
  virtual absl::Status Resume() = 0;
  virtual absl::Status Shutdown() = 0;

  virtual v1::ListDevicesResponse Devices() const = 0;
  virtual uint32_t ReadConfig(pci::Bdf bdf, uint16_t offset, uint8_t width) = 0;
  virtual absl::Status WriteConfig(pci::Bdf bdf, uint16_t offset, uint8_t width,
                                   uint32_t value) = 0;

  virtual v1::GetStatsResponse Stats(const StatsQuery& query) const = 0;
  virtual void ResetStats(uint32_t scopes) = 0;
  virtual v1::MappingStats MappingStats(std::optional<pci::Bdf> bdf) const = 0;

  virtual absl::Status SetBarPolicy(std::optional<pci::MapPolicy> policy,
                                    std::optional<uint64_t> cost_ns_per_gib) = 0;
  virtual absl::Status SetConfigMode(std::optional<bool> pio_enabled,
                                     std::optional<bool> ecam_fast_path) = 0;

  virtual EventHub& events() = 0;
};

}  // namespace pcivmm::api

#endif  // PCIVMM_API_VM_BACKEND_H_
