#include "api/vm_state.h"

namespace pcivmm::api {

const char* VmStateName(VmState state) {
  switch (state) {
    case VmState::kCreated:
      return "CREATED";
    case VmState::kRunning:
      return "RUNNING";
    case VmState::kPaused:
      return "PAUSED";
    case VmState::kStopped:
      return "STOPPED";
  }
  return "?";
}

}  // namespace pcivmm::api
