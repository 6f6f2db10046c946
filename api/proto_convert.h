// Small conversions between the VMM's C++ types and pcivmm.v1 messages.
#ifndef PCIVMM_API_PROTO_CONVERT_H_
#define PCIVMM_API_PROTO_CONVERT_H_

#include "api/event_hub.h"
#include "api/kvm_stats.h"
#include "api/vm_state.h"
#include "pci/bar_mapper.h"
#include "pci/bdf.h"
#include "pci/latency_histogram.h"
#include "pcivmm/v1/vm_service.pb.h"
#include "vmm/base/boot_profile.h"

namespace pcivmm::api {

v1::Bdf ToProto(pci::Bdf bdf);
// The caller validated the ranges (see ValidateBdf).
pci::Bdf FromProto(const v1::Bdf& bdf);
v1::ConfigPath ToProto(pci::ConfigPath path);
v1::BarPolicy ToProto(pci::MapPolicy policy);
v1::VmState ToProto(VmState state);
v1::BarMappingOp ToProto(pci::MapEventKind kind);
v1::KvmStatKind ToProto(KvmStatValue::Type type);
void ToProto(const pci::LatencyHistogram& h, v1::LatencyHistogram* out);
// Everything but a boot timeout's report, which the hub keeps (EventHub::boot_timeout_report).
void ToProto(const EventRecord& r, v1::Event* out);
void ToProto(const platform::BootTimeoutReport& r, v1::BootTimeoutEvent* out);
void ToProto(const base::BootProfile& p, v1::BootProfile* out);

}  // namespace pcivmm::api

#endif  // PCIVMM_API_PROTO_CONVERT_H_
