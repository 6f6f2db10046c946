// What the VFIO lab (tests/lab/lab.sh --vfio-*, tests/lab/vfio_tier.sh) hands the VFIO tests:
// the bound devices, the ivshmem backing file and the seed the host wrote into it.
#ifndef PCIVMM_TESTS_KVM_VFIO_LAB_H_
#define PCIVMM_TESTS_KVM_VFIO_LAB_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace pcivmm::testing::vfio_lab {

// The first 8 bytes of the ivshmem file: "PVMMSEED" (tests/lab/vfio_tier.sh writes them).
inline constexpr uint64_t kSeedMagic = 0x444545534D4D5650ull;

// The first BDF in `var` (space-separated); a test failure when the lab set none.
inline std::string FirstDevice(const char* var) {
  const char* v = std::getenv(var);
  std::string s = v != nullptr ? v : "";
  s = s.substr(0, s.find(' '));
  EXPECT_FALSE(s.empty()) << var << " is not set: run in the VFIO lab (tests/lab/vfio_tier.sh)";
  return s;
}
inline std::string Ivshmem() { return FirstDevice("PCIVMM_VFIO_IVSHMEM"); }
inline std::string Edu() { return FirstDevice("PCIVMM_VFIO_EDU"); }

// The second qword of the ivshmem file, chosen by the host for this run.
inline uint64_t Seed() {
  const char* v = std::getenv("PCIVMM_VFIO_SEED");
  uint64_t seed = 0;
  EXPECT_TRUE(v != nullptr && absl::SimpleAtoi(v, &seed)) << "PCIVMM_VFIO_SEED is not set";
  return seed;
}

// The device's config space as the host kernel reads it from the hardware (sysfs), not
// through VFIO: what the device really holds.
inline std::vector<uint8_t> HostConfig(const std::string& bdf) {
  std::ifstream in("/sys/bus/pci/devices/" + bdf + "/config", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline uint32_t Dword(const std::vector<uint8_t>& config, size_t offset) {
  uint32_t v = 0;
  if (offset + 4 <= config.size()) std::memcpy(&v, config.data() + offset, 4);
  return v;
}

// A qword of the ivshmem backing file, read through the lab's output share (no cache), i.e.
// what reached the host.
inline uint64_t IvshmemFileQword(uint64_t offset) {
  const char* path = std::getenv("PCIVMM_VFIO_IVSHMEM_FILE");
  EXPECT_NE(path, nullptr) << "PCIVMM_VFIO_IVSHMEM_FILE is not set";
  if (path == nullptr) return 0;
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  uint64_t v = 0;
  in.read(reinterpret_cast<char*>(&v), sizeof(v));
  return v;
}

}  // namespace pcivmm::testing::vfio_lab

#endif  // PCIVMM_TESTS_KVM_VFIO_LAB_H_
