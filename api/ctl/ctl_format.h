// pcivmmctl's human-readable tables.
#ifndef PCIVMM_API_CTL_CTL_FORMAT_H_
#define PCIVMM_API_CTL_CTL_FORMAT_H_

#include <string>

#include "pcivmm/v1/vm_service.pb.h"

namespace pcivmm::ctl {

std::string BdfText(const v1::Bdf& bdf);
std::string FormatInfo(const v1::GetVmInfoResponse& info);
std::string FormatDevices(const v1::ListDevicesResponse& devices);
std::string FormatStats(const v1::GetStatsResponse& stats);
std::string FormatMapping(const v1::MappingStats& mapping);
// One line per event (no newline).
std::string FormatEvent(const v1::Event& event);

}  // namespace pcivmm::ctl

#endif  // PCIVMM_API_CTL_CTL_FORMAT_H_
