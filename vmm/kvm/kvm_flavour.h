// Which KVM is behind /dev/kvm: hardware KVM (Intel VMX, AMD SVM), PVM, none, or unknown.
//
// PVM (the kvm_pvm module) is a KVM for hosts without hardware virtualisation: it runs guests
// in a shadow-paged, deprivileged mode and only guest kernels built for it. Our freestanding
// test guests run there; Debian's unmodified kernel does not (it hangs after its first serial
// writes, as under QEMU -accel kvm), and its timings are not those of hardware KVM. So the
// project runs Linux guests, and measures, on hardware KVM only: directly where /dev/kvm is
// hardware KVM, in the nested lab (tests/lab/) everywhere else.
#ifndef PCIVMM_VMM_KVM_KVM_FLAVOUR_H_
#define PCIVMM_VMM_KVM_KVM_FLAVOUR_H_

#include <set>
#include <string>
#include <string_view>

namespace pcivmm::kvm {

enum class KvmFlavour { kAbsent, kIntelVmx, kAmdSvm, kPvm, kUnknown };

// What the host says, gathered by ReadKvmHostFacts (or written by a unit test).
struct KvmHostFacts {
  bool device_present = false;           // the /dev/kvm node exists
  std::string open_error;                // why it could not be opened; empty when it was
  int api_version = -1;                  // KVM_GET_API_VERSION; -1 when not opened
  std::set<std::string> vendor_modules;  // of kvm_intel, kvm_amd, kvm_pvm under /sys/module
  bool cpu_vmx = false;                  // "vmx" in /proc/cpuinfo's flags
  bool cpu_svm = false;                  // "svm"
};

struct KvmClass {
  KvmFlavour flavour = KvmFlavour::kUnknown;
  std::string reason;  // one line: the facts that decided
  // Hardware KVM: unmodified Linux guests boot and timings mean what they say.
  bool hardware() const {
    return flavour == KvmFlavour::kIntelVmx || flavour == KvmFlavour::kAmdSvm;
  }
};

// Where the files live; a unit test points them into a fake tree.
struct KvmHostPaths {
  std::string device = "/dev/kvm";
  std::string sys_module = "/sys/module";
  std::string cpuinfo = "/proc/cpuinfo";
};

KvmHostFacts ReadKvmHostFacts(const KvmHostPaths& paths = {});
KvmClass ClassifyKvm(const KvmHostFacts& facts);
inline KvmClass ClassifyHostKvm() { return ClassifyKvm(ReadKvmHostFacts()); }

// "absent", "vmx", "svm", "pvm", "unknown": the names in the API, metrics and bench JSON.
std::string_view FlavourName(KvmFlavour flavour);
// For people: "Intel VMX (hardware KVM)", "PVM", ...
std::string_view FlavourTitle(KvmFlavour flavour);

// "lab" inside the nested lab (its init sets PCIVMM_LAB=1), otherwise "direct".
std::string_view KvmWhere();

// {"flavour": "...", "where": "...", "reason": "..."[, "host_flavour": "..."]}: the object every
// bench JSON carries. `host_flavour` (in the lab: the outer machine's, which ./dev passes in
// PCIVMM_HOST_KVM) is left out when empty.
std::string KvmJson(const KvmClass& kvm, std::string_view where,
                    std::string_view host_flavour = "");
// KvmJson of this process: ClassifyHostKvm(), KvmWhere() and, in the lab, PCIVMM_HOST_KVM.
std::string ThisKvmJson();

}  // namespace pcivmm::kvm

#endif  // PCIVMM_VMM_KVM_KVM_FLAVOUR_H_
