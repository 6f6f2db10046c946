// pcivmmctl: one subcommand per RPC of pcivmm.v1.VmService.
#ifndef PCIVMM_API_CTL_CTL_H_
#define PCIVMM_API_CTL_CTL_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "pcivmm/v1/vm_service.grpc.pb.h"

namespace pcivmm::ctl {

// Exit statuses (README, "pcivmmctl").
enum ExitCode : int {
  kOk = 0,
  kServerError = 1,   // any other error the daemon returned
  kUsage = 2,         // bad command line, or INVALID_ARGUMENT from the daemon
  kUnreachable = 3,   // UNAVAILABLE / DEADLINE_EXCEEDED: no daemon there
  kNotFound = 4,      // NOT_FOUND
  kPrecondition = 5,  // FAILED_PRECONDITION: not in this state
  kExhausted = 6,     // RESOURCE_EXHAUSTED
};
int ExitCodeFor(grpc::StatusCode code);

struct Options {
  bool json = false;
  absl::Duration timeout = absl::Seconds(10);  // per call; watch has none
  // stats
  bool registers = false;
  bool kvm = false;
  std::string bdf;  // stats, mapping: one function
  // set-policy
  std::optional<uint64_t> cost_ns_per_gib;
  // set-config-mode: "", "on" or "off"
  std::string pio;
  std::string ecam_fast_path;
  // watch
  std::string kinds;    // comma-separated: bar,config,boot,state,timeout
  uint32_t buffer = 0;  // events buffered in the daemon
  int64_t count = -1;   // stop after this many events; -1: until the stream ends
  // metrics
  std::string format = "prometheus";
};

// "00:01.0" (bus:device.function, hex) or "01.0" (bus 0).
absl::StatusOr<v1::Bdf> ParseBdf(absl::string_view text);
// Decimal or 0x-prefixed hexadecimal.
absl::StatusOr<uint64_t> ParseNumber(absl::string_view text);

// Runs `args` (the command and its operands) against `stub`; returns the exit status.
int Run(const Options& options, const std::vector<std::string>& args,
        v1::VmService::StubInterface& stub, std::ostream& out, std::ostream& err);

std::string Usage();

}  // namespace pcivmm::ctl

#endif  // PCIVMM_API_CTL_CTL_H_
