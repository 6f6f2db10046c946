#ifndef PCIVMM_API_VM_STATE_H_
#define PCIVMM_API_VM_STATE_H_

#include <cstdint>

namespace pcivmm::api {

// The life cycle the API reports (pcivmm.v1.VmState).
enum class VmState : uint8_t { kCreated, kRunning, kPaused, kStopped };

const char* VmStateName(VmState state);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_VM_STATE_H_
