// kvm-flavour: which KVM this machine has, by the same classifier as pcivmm's.
//   kvm-flavour          one line: FLAVOUR<TAB>TITLE: REASON   (what ./dev reads)
//   kvm-flavour --json   {"flavour": ..., "where": "direct"|"lab", "reason": ...}
#include <cstdio>
#include <cstring>
#include <string>

#include "vmm/kvm/kvm_flavour.h"

int main(int argc, char** argv) {
  const pcivmm::kvm::KvmClass kvm = pcivmm::kvm::ClassifyHostKvm();
  if (argc == 2 && std::strcmp(argv[1], "--json") == 0) {
    std::puts(pcivmm::kvm::ThisKvmJson().c_str());
    return 0;
  }
  if (argc != 1) {
    std::fputs("usage: kvm-flavour [--json]\n", stderr);
    return 2;
  }
  const std::string name(pcivmm::kvm::FlavourName(kvm.flavour));
  const std::string title(pcivmm::kvm::FlavourTitle(kvm.flavour));
  std::printf("%s\t%s: %s\n", name.c_str(), title.c_str(), kvm.reason.c_str());
  return 0;
}
