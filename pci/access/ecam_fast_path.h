// The ECAM read fast path: the window is backed by read-only memory slots whose host pages
// are the functions' live config spaces, so guest reads never exit.
#ifndef PCIVMM_PCI_ACCESS_ECAM_FAST_PATH_H_
#define PCIVMM_PCI_ACCESS_ECAM_FAST_PATH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmio/address_range.h"
#include "mmio/memslot_table.h"
#include "pci/pci_bus.h"
#include "vmm/base/host_mapping.h"

namespace pcivmm::pci {

// How it works. PciBus keeps each bus-0 function's 4 KiB config space in a page of one memfd,
// and ConfigSpace stores every register exactly as it reads (no register computes its value
// on read), so those pages *are* the shadow: nothing is ever copied. This class reserves a
// host window the size of the ECAM window and maps into it, read-only:
//   - a present function's page: its memfd page (the same physical page the VMM writes);
//   - an absent function on bus 0: one shared all-ones page (a single page of host memory);
//   - buses 1..N: as bus 0 where the bridges' bus numbers (as the guest programs them) put
//     functions; a bus with none, one shared 1 MiB all-ones region (one mapping per bus). A
//     write to a bridge's bus numbers traps like every write and remaps what moved
//     (PciBus's RoutingObserver), before the vCPU re-enters.
// KVM_MEM_READONLY slots then cover the window, except the pages of functions that opted
// out (DeviceSpec::ecam_fast_path = false), which stay holes and trap like the trap path.
//
// Writes: a guest write to a read-only slot exits as KVM_EXIT_MMIO and reaches PciBus
// through EcamConfigAccess on the MMIO bus, which stores the new dword into the page before
// the vCPU re-enters, so the next read from any vCPU sees it.
class EcamFastPath : public RoutingObserver {
 public:
  // Registers as `bus`'s routing observer: no config write may reach the bus once the fast
  // path is gone (PciPlatform destroys them together, after the vCPUs stopped).
  static absl::StatusOr<std::unique_ptr<EcamFastPath>> Create(PciBus& bus,
                                                              mmio::MemslotTable& slots,
                                                              uint64_t window_base);
  ~EcamFastPath() override;
  EcamFastPath(const EcamFastPath&) = delete;
  EcamFastPath& operator=(const EcamFastPath&) = delete;

  // Installs / removes the read-only slots (idempotent). Safe while vCPUs run.
  absl::Status Enable();
  absl::Status Disable();
  bool enabled() const;

  // The guest ranges the slots cover: as few as the opt-out holes allow.
  const std::vector<mmio::AddressRange>& slot_ranges() const { return runs_; }
  // Host memory behind the shadow (shmem pages allocated by the memfds).
  uint64_t shadow_bytes() const;
  // The guest-visible bytes of the window (tests compare them with the trap path).
  absl::Span<const uint8_t> window() const { return {window_, window_size_}; }

  // Remaps buses 1..N to the functions that answer there now.
  void OnRoutingChanged() override;

 private:
  EcamFastPath(mmio::MemslotTable& slots, uint64_t base, uint64_t size)
      : slots_(slots), base_(base), window_size_(size) {}
  absl::Status MapWindow(PciBus& bus);
  absl::Status MapBuses() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MapBus(int b, const std::array<uint32_t, kDevfnsPerBus>& pages)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MapAt(uint64_t offset, uint64_t size, int fd, uint64_t fd_offset);
  void ComputeRuns(const PciBus& bus);

  mmio::MemslotTable& slots_;
  const uint64_t base_;
  const uint64_t window_size_;
  uint8_t* window_ = nullptr;
  std::optional<base::HostMapping> ones_page_;
  std::optional<base::HostMapping> ones_bus_;
  const base::HostMapping* config_pages_ = nullptr;
  std::vector<mmio::AddressRange> runs_;
  PciBus* bus_ = nullptr;
  mutable absl::Mutex mu_;
  std::vector<uint32_t> installed_ ABSL_GUARDED_BY(mu_);
  // Per bus 1..N, the config page (function index) each devfn shows; kNoFunction: all-ones.
  std::vector<std::array<uint32_t, kDevfnsPerBus>> shown_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pcivmm::pci

#endif  // PCIVMM_PCI_ACCESS_ECAM_FAST_PATH_H_
