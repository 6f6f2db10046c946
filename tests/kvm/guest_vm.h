// A machine (and optionally a PCI platform) running one freestanding test guest: the
// common set-up of the KVM-tier tests.
#ifndef PCIVMM_TESTS_KVM_GUEST_VM_H_
#define PCIVMM_TESTS_KVM_GUEST_VM_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "vmm/devices/test_devices.h"
#include "vmm/platform/machine.h"
#include "vmm/platform/pci_platform.h"

namespace pcivmm::testing {

class GuestVm {
 public:
  // Console captured, not echoed. Fails the test (and returns nullptr) on a setup error.
  static std::unique_ptr<GuestVm> Create(std::optional<platform::PciConfig> pci = std::nullopt,
                                         int vcpus = 1) {
    platform::MachineConfig mc;
    mc.vcpus = vcpus;
    return CreateWith(mc, std::move(pci));
  }

  // The same with a chosen machine (RAM size, the PC platform's in-kernel irqchip).
  static std::unique_ptr<GuestVm> CreateWith(platform::MachineConfig mc,
                                             std::optional<platform::PciConfig> pci) {
    mc.console_echo = nullptr;
    auto m = platform::Machine::Create(mc);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return nullptr;
    std::unique_ptr<GuestVm> vm(new GuestVm(std::move(*m)));
    if (pci) {
      auto p = platform::PciPlatform::Attach(*vm->machine_, *pci);
      EXPECT_TRUE(p.ok()) << p.status();
      if (!p.ok()) return nullptr;
      vm->pci_ = std::move(*p);
    }
    return vm;
  }

  // Runs guest-images/<name>.bin with `arg`; afterwards Report() reads what it printed.
  kvm::StopReason Run(const std::string& name, uint64_t arg = 0) {
    return RunImage(std::string(PCIVMM_GUEST_DIR) + "/" + name + ".bin", arg);
  }

  // Runs the flat image at `path`.
  kvm::StopReason RunImage(const std::string& path, uint64_t arg = 0) {
    absl::Status st = machine_->LoadTestGuest(path, arg);
    EXPECT_TRUE(st.ok()) << st;
    kvm::StopReason r = machine_->Run();
    reports_ = devices::testing::ParseReports(machine_->console().output());
    return r;
  }

  // A "REPORT key=value" the guest printed; a test failure if it printed none.
  uint64_t Report(const std::string& key) {
    auto it = reports_.find(key);
    EXPECT_NE(it, reports_.end()) << "the guest did not report " << key << "; console:\n"
                                  << machine_->console().output();
    return it == reports_.end() ? ~0ull : it->second;
  }

  platform::Machine& machine() { return *machine_; }
  platform::PciPlatform& pci() { return *pci_; }
  const kvm::ExitStats& stats() { return machine_->stats(); }

 private:
  explicit GuestVm(std::unique_ptr<platform::Machine> m) : machine_(std::move(m)) {}
  std::unique_ptr<platform::Machine> machine_;
  std::unique_ptr<platform::PciPlatform>
      pci_;  // after machine_: destroyed first (it uses its memslots)
  std::map<std::string, uint64_t> reports_;
};

}  // namespace pcivmm::testing

#endif  // PCIVMM_TESTS_KVM_GUEST_VM_H_
