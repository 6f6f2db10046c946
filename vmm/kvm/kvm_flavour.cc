#include "vmm/kvm/kvm_flavour.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "vmm/base/unique_fd.h"

namespace pcivmm::kvm {
namespace {

constexpr const char* kVendorModules[] = {"kvm_intel", "kvm_amd", "kvm_pvm"};

// Indexed by KvmFlavour: the name the API, metrics and bench JSON use, and the one for people.
struct FlavourNames {
  std::string_view name;
  std::string_view title;
};
constexpr FlavourNames kFlavours[] = {
    {"absent", "no /dev/kvm"},         {"vmx", "hardware KVM (Intel VMX)"},
    {"svm", "hardware KVM (AMD SVM)"}, {"pvm", "PVM"},
    {"unknown", "unknown KVM"},
};
static_assert(std::size(kFlavours) == static_cast<size_t>(KvmFlavour::kUnknown) + 1);

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The words of /proc/cpuinfo's first "flags" line.
std::set<std::string> CpuFlags(const std::string& cpuinfo) {
  std::ifstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    std::set<std::string> flags;
    for (std::string w; words >> w;) flags.insert(w);
    return flags;
  }
  return {};
}

void OpenDevice(const std::string& device, KvmHostFacts* facts) {
  base::UniqueFd fd(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) {
    facts->open_error = std::strerror(errno);
    return;
  }
  facts->api_version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
}

std::string CpuFlagText(const KvmHostFacts& f) {
  if (f.cpu_vmx && f.cpu_svm) return "the CPU has vmx and svm";
  if (f.cpu_vmx) return "the CPU has vmx";
  if (f.cpu_svm) return "the CPU has svm";
  return "the CPU has neither vmx nor svm";
}

// The vendor module (or, with none visible, KVM built in) with its CPU flag.
std::optional<KvmClass> Hardware(const KvmHostFacts& f, KvmFlavour flavour, const char* module,
                                 bool flag) {
  const char* flag_name = flavour == KvmFlavour::kIntelVmx ? "vmx" : "svm";
  if (!flag) return std::nullopt;
  if (f.vendor_modules.contains(module)) {
    return KvmClass{flavour, absl::StrCat(module, " is loaded and the CPU has ", flag_name)};
  }
  if (!f.vendor_modules.empty()) return std::nullopt;
  return KvmClass{flavour, absl::StrCat("the CPU has ", flag_name,
                                        " (KVM built in: no vendor module under /sys/module)")};
}

}  // namespace

KvmHostFacts ReadKvmHostFacts(const KvmHostPaths& paths) {
  KvmHostFacts facts;
  facts.device_present = Exists(paths.device);
  if (facts.device_present) OpenDevice(paths.device, &facts);
  for (const char* m : kVendorModules) {
    if (Exists(paths.sys_module + "/" + m)) facts.vendor_modules.insert(m);
  }
  const std::set<std::string> flags = CpuFlags(paths.cpuinfo);
  facts.cpu_vmx = flags.contains("vmx");
  facts.cpu_svm = flags.contains("svm");
  return facts;
}

KvmClass ClassifyKvm(const KvmHostFacts& f) {
  if (!f.device_present) return {KvmFlavour::kAbsent, "/dev/kvm does not exist"};
  if (!f.open_error.empty()) {
    return {KvmFlavour::kUnknown, absl::StrCat("/dev/kvm cannot be opened: ", f.open_error)};
  }
  if (f.api_version != KVM_API_VERSION) {
    return {KvmFlavour::kUnknown, absl::StrFormat("/dev/kvm reports KVM API version %d, not %d",
                                                  f.api_version, KVM_API_VERSION)};
  }
  // One vendor module drives /dev/kvm at a time; PVM is chosen over the CPU's flags, which a
  // PVM host may also show (kvm_pvm can be loaded where VMX exists).
  if (f.vendor_modules.contains("kvm_pvm")) {
    return {KvmFlavour::kPvm, absl::StrCat("kvm_pvm is loaded and ", CpuFlagText(f),
                                           ": PVM runs only guest kernels built for it")};
  }
  if (auto intel = Hardware(f, KvmFlavour::kIntelVmx, "kvm_intel", f.cpu_vmx)) return *intel;
  if (auto amd = Hardware(f, KvmFlavour::kAmdSvm, "kvm_amd", f.cpu_svm)) return *amd;
  const std::string modules = f.vendor_modules.empty()
                                  ? "no kvm_intel, kvm_amd or kvm_pvm module"
                                  : absl::StrJoin(f.vendor_modules, ", ") + " loaded";
  return {KvmFlavour::kUnknown,
          absl::StrCat("/dev/kvm exists but ", modules, " and ", CpuFlagText(f))};
}

std::string_view FlavourName(KvmFlavour flavour) {
  return kFlavours[static_cast<size_t>(flavour)].name;
}

std::string_view FlavourTitle(KvmFlavour flavour) {
  return kFlavours[static_cast<size_t>(flavour)].title;
}

std::string_view KvmWhere() {
  const char* lab = std::getenv("PCIVMM_LAB");
  return lab != nullptr && std::string_view(lab) == "1" ? "lab" : "direct";
}

std::string KvmJson(const KvmClass& kvm, std::string_view where, std::string_view host_flavour) {
  std::string reason;
  for (char c : kvm.reason) {
    if (c == '"' || c == '\\') reason += '\\';
    reason += c;
  }
  std::string host;
  for (char c : host_flavour) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) host += c;  // a FlavourName
  }
  return absl::StrFormat(R"({"flavour": "%s", "where": "%s", "reason": "%s"%s})",
                         FlavourName(kvm.flavour), where, reason,
                         host.empty() ? "" : absl::StrFormat(R"(, "host_flavour": "%s")", host));
}

std::string ThisKvmJson() {
  const std::string_view where = KvmWhere();
  const char* host = std::getenv("PCIVMM_HOST_KVM");
  return KvmJson(ClassifyHostKvm(), where, where == "lab" && host != nullptr ? host : "");
}

}  // namespace pcivmm::kvm
