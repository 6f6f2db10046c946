#include "vmm/platform/slot_budget.h"

#include <string>

#include "absl/strings/str_format.h"
#include "vmm/base/proc_fields.h"

namespace pcivmm::platform {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t k4KPagesPerGib = kGiB >> 12;  // 262144
constexpr uint64_t k2MPagesPerGib = kGiB >> 21;  // 512

std::string Human(uint64_t bytes) {
  if (bytes >= (1ull << 40))
    return absl::StrFormat("%.1f TiB", static_cast<double>(bytes) / (1ull << 40));
  if (bytes >= kGiB) return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / kGiB);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
}

}  // namespace

uint64_t SlotMetadataBytesPerGib(kvm::KvmFlavour flavour) {
  // lpage_info: 4 bytes per 2 MiB and per 1 GiB page, for every slot.
  const uint64_t lpage_info = 4 * k2MPagesPerGib + 4;
  if (flavour == kvm::KvmFlavour::kIntelVmx || flavour == kvm::KvmFlavour::kAmdSvm)
    return lpage_info;
  // Reverse maps: 8 bytes per page at each of the 4 KiB, 2 MiB and 1 GiB levels.
  return lpage_info + 8 * (k4KPagesPerGib + k2MPagesPerGib + 1);
}

absl::Status CheckSlotBudget(uint64_t slot_bytes, kvm::KvmFlavour flavour, uint64_t mem_available) {
  const uint64_t per_gib = SlotMetadataBytesPerGib(flavour);
  // Rounded up to whole GiB; products stay far below 2^64 for any GPA width KVM has.
  const uint64_t cost = (slot_bytes + kGiB - 1) / kGiB * per_gib;
  const uint64_t budget = mem_available / 2;
  if (cost <= budget) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "memory slots: guest RAM and BARs of %s would cost the host kernel ~%s of KVM slot "
      "metadata (%s: ~%d KiB per GiB of slot), over half of the host's available memory (%s "
      "of %s); use fewer or smaller BARs (--gpus, --gpu-bar1-gib) or less RAM",
      Human(slot_bytes), Human(cost), kvm::FlavourTitle(flavour), per_gib >> 10, Human(budget),
      Human(mem_available)));
}

absl::StatusOr<uint64_t> HostMemAvailable(const char* meminfo) {
  return base::ReadProcKib(meminfo, "MemAvailable:");
}

}  // namespace pcivmm::platform
