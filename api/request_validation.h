// Checks of API request fields: InvalidArgument / NotFound naming the field.
#ifndef PCIVMM_API_REQUEST_VALIDATION_H_
#define PCIVMM_API_REQUEST_VALIDATION_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/vm_backend.h"
#include "pcivmm/v1/vm_service.pb.h"

namespace pcivmm::api {

// A function address inside the decoded buses: bus < bus_count, device <= 31, function <= 7.
absl::StatusOr<pci::Bdf> ValidateBdf(const v1::Bdf& bdf, absl::string_view field, int bus_count);
// ValidateBdf, and the function must exist (NotFound otherwise).
absl::StatusOr<pci::Bdf> ValidatePresentBdf(const v1::Bdf& bdf, bool has_bdf,
                                            absl::string_view field, const VmBackend& backend);

struct ConfigAccessArgs {
  pci::Bdf bdf;
  uint16_t offset;
  uint8_t width;
};
// offset < 4096, width 1/2/4, offset a multiple of width (so the access stays in one dword).
absl::StatusOr<ConfigAccessArgs> ValidateConfigAccess(const v1::Bdf& bdf, bool has_bdf,
                                                      uint32_t offset, uint32_t width,
                                                      const VmBackend& backend);
absl::Status ValidateValueFits(uint32_t value, uint8_t width);

// The request's bdf filter of GetStats / GetMappingStats: bus 0 only (per-function counters
// exist for bus 0). Present functions are not required for stats (absent ones are probed).
absl::StatusOr<std::optional<pci::Bdf>> ValidateStatsBdf(const v1::Bdf& bdf, bool has_bdf,
                                                         const VmBackend& backend);

// EventKindBit mask; empty: everything except config accesses.
absl::StatusOr<uint32_t> EventKindsMask(const google::protobuf::RepeatedField<int>& kinds);
// 0 -> the default; else 1..EventHub::kMaxBuffer.
absl::StatusOr<size_t> EventBufferSize(uint32_t buffer_events);
// StatsScopeBit mask; empty: every scope.
absl::StatusOr<uint32_t> StatsScopesMask(const google::protobuf::RepeatedField<int>& scopes);
// Unspecified -> nullopt (unchanged).
absl::StatusOr<std::optional<pci::MapPolicy>> RequestedPolicy(int policy);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_REQUEST_VALIDATION_H_
