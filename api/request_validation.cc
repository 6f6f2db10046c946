#include "api/request_validation.h"

#include "absl/strings/str_format.h"
#include "api/config_convert.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", field, why));
}

}  // namespace

absl::StatusOr<pci::Bdf> ValidateBdf(const v1::Bdf& bdf, absl::string_view field, int bus_count) {
  if (bdf.bus() >= static_cast<uint32_t>(bus_count)) {
    return Invalid(absl::StrCat(field, ".bus"),
                   absl::StrFormat("%d is outside the %d bus(es) the ECAM window decodes",
                                   bdf.bus(), bus_count));
  }
  if (bdf.device() > 31) {
    return Invalid(absl::StrCat(field, ".device"),
                   absl::StrFormat("%d is outside 0..31", bdf.device()));
  }
  if (bdf.function() > 7) {
    return Invalid(absl::StrCat(field, ".function"),
                   absl::StrFormat("%d is outside 0..7", bdf.function()));
  }
  return pci::Bdf{static_cast<uint8_t>(bdf.bus()), static_cast<uint8_t>(bdf.device()),
                  static_cast<uint8_t>(bdf.function())};
}

absl::StatusOr<pci::Bdf> ValidatePresentBdf(const v1::Bdf& bdf, bool has_bdf,
                                            absl::string_view field, const VmBackend& backend) {
  if (!has_bdf) return Invalid(field, "required");
  PCIVMM_ASSIGN_OR_RETURN(pci::Bdf b, ValidateBdf(bdf, field, backend.bus_count()));
  if (!backend.HasFunction(b)) {
    return absl::NotFoundError(absl::StrFormat("%s: no function at %s", field, b.ToString()));
  }
  return b;
}

absl::StatusOr<ConfigAccessArgs> ValidateConfigAccess(const v1::Bdf& bdf, bool has_bdf,
                                                      uint32_t offset, uint32_t width,
                                                      const VmBackend& backend) {
  if (width != 1 && width != 2 && width != 4) {
    return Invalid("width", absl::StrFormat("%d is not 1, 2 or 4", width));
  }
  if (offset >= 4096) {
    return Invalid("offset", absl::StrFormat("%#x is outside config space (0..0xfff)", offset));
  }
  if (offset % width != 0) {
    return Invalid("offset",
                   absl::StrFormat("%#x is not a multiple of width %d (an access may not cross "
                                   "its naturally aligned dword)",
                                   offset, width));
  }
  PCIVMM_ASSIGN_OR_RETURN(pci::Bdf b, ValidatePresentBdf(bdf, has_bdf, "bdf", backend));
  return ConfigAccessArgs{b, static_cast<uint16_t>(offset), static_cast<uint8_t>(width)};
}

absl::Status ValidateValueFits(uint32_t value, uint8_t width) {
  if (width < 4 && value >> (8 * width) != 0) {
    return Invalid("value", absl::StrFormat("%#x does not fit in %d byte(s)", value, width));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<pci::Bdf>> ValidateStatsBdf(const v1::Bdf& bdf, bool has_bdf,
                                                         const VmBackend& backend) {
  if (!has_bdf) return std::nullopt;
  PCIVMM_ASSIGN_OR_RETURN(pci::Bdf b, ValidateBdf(bdf, "bdf", backend.bus_count()));
  if (b.bus != 0) return Invalid("bdf.bus", "per-function counters exist for bus 0 only");
  return b;
}

absl::StatusOr<uint32_t> EventKindsMask(const google::protobuf::RepeatedField<int>& kinds) {
  if (kinds.empty()) return kAllEventKinds & ~EventKindBit(EventKind::kConfigAccess);
  uint32_t mask = 0;
  for (int i = 0; i < kinds.size(); ++i) {
    switch (kinds[i]) {
      case v1::EVENT_KIND_BAR_MAPPING:
        mask |= EventKindBit(EventKind::kBarMapping);
        break;
      case v1::EVENT_KIND_CONFIG_ACCESS:
        mask |= EventKindBit(EventKind::kConfigAccess);
        break;
      case v1::EVENT_KIND_BOOT_MARKER:
        mask |= EventKindBit(EventKind::kBootMarker);
        break;
      case v1::EVENT_KIND_STATE_CHANGE:
        mask |= EventKindBit(EventKind::kStateChange);
        break;
      case v1::EVENT_KIND_BOOT_TIMEOUT:
        mask |= EventKindBit(EventKind::kBootTimeout);
        break;
      default:
        return Invalid(absl::StrFormat("kinds[%d]", i),
                       absl::StrFormat("%d is not an event kind", kinds[i]));
    }
  }
  return mask;
}

absl::StatusOr<size_t> EventBufferSize(uint32_t buffer_events) {
  if (buffer_events == 0) return EventHub::kDefaultBuffer;
  if (buffer_events > EventHub::kMaxBuffer) {
    return Invalid("buffer_events",
                   absl::StrFormat("%d is above %d", buffer_events, EventHub::kMaxBuffer));
  }
  return buffer_events;
}

absl::StatusOr<uint32_t> StatsScopesMask(const google::protobuf::RepeatedField<int>& scopes) {
  if (scopes.empty()) return kAllScopes;
  uint32_t mask = 0;
  for (int i = 0; i < scopes.size(); ++i) {
    switch (scopes[i]) {
      case v1::STATS_SCOPE_EXITS:
        mask |= kScopeExits;
        break;
      case v1::STATS_SCOPE_CONFIG:
        mask |= kScopeConfig;
        break;
      case v1::STATS_SCOPE_MAPPING:
        mask |= kScopeMapping;
        break;
      case v1::STATS_SCOPE_KVM:
        mask |= kScopeKvm;
        break;
      default:
        return Invalid(absl::StrFormat("scopes[%d]", i),
                       absl::StrFormat("%d is not a stats scope", scopes[i]));
    }
  }
  return mask;
}

absl::StatusOr<std::optional<pci::MapPolicy>> RequestedPolicy(int policy) {
  switch (policy) {
    case v1::BAR_POLICY_UNSPECIFIED:
      return std::nullopt;
    case v1::BAR_POLICY_EAGER:
      return pci::MapPolicy::kEager;
    case v1::BAR_POLICY_DEFERRED:
      return pci::MapPolicy::kDeferred;
    default:
      return Invalid("policy", absl::StrFormat("%d is not a BarPolicy", policy));
  }
}

}  // namespace pcivmm::api
