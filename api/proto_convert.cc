#include "api/proto_convert.h"

namespace pcivmm::api {

v1::Bdf ToProto(pci::Bdf bdf) {
  v1::Bdf b;
  b.set_bus(bdf.bus);
  b.set_device(bdf.device);
  b.set_function(bdf.function);
  return b;
}

pci::Bdf FromProto(const v1::Bdf& bdf) {
  return {static_cast<uint8_t>(bdf.bus()), static_cast<uint8_t>(bdf.device()),
          static_cast<uint8_t>(bdf.function())};
}

v1::ConfigPath ToProto(pci::ConfigPath path) {
  switch (path) {
    case pci::ConfigPath::kPio:
      return v1::CONFIG_PATH_PIO;
    case pci::ConfigPath::kEcam:
      return v1::CONFIG_PATH_ECAM;
    case pci::ConfigPath::kHost:
      return v1::CONFIG_PATH_HOST;
  }
  return v1::CONFIG_PATH_UNSPECIFIED;
}

v1::BarPolicy ToProto(pci::MapPolicy policy) {
  return policy == pci::MapPolicy::kEager ? v1::BAR_POLICY_EAGER : v1::BAR_POLICY_DEFERRED;
}

v1::VmState ToProto(VmState state) {
  switch (state) {
    case VmState::kCreated:
      return v1::VM_STATE_CREATED;
    case VmState::kRunning:
      return v1::VM_STATE_RUNNING;
    case VmState::kPaused:
      return v1::VM_STATE_PAUSED;
    case VmState::kStopped:
      return v1::VM_STATE_STOPPED;
  }
  return v1::VM_STATE_UNSPECIFIED;
}

v1::BarMappingOp ToProto(pci::MapEventKind kind) {
  switch (kind) {
    case pci::MapEventKind::kMap:
      return v1::BAR_MAPPING_OP_MAP;
    case pci::MapEventKind::kUnmap:
      return v1::BAR_MAPPING_OP_UNMAP;
    case pci::MapEventKind::kMove:
      return v1::BAR_MAPPING_OP_MOVE;
    case pci::MapEventKind::kEvict:
      return v1::BAR_MAPPING_OP_EVICT;
    case pci::MapEventKind::kConflict:
      return v1::BAR_MAPPING_OP_CONFLICT;
  }
  return v1::BAR_MAPPING_OP_UNSPECIFIED;
}

v1::KvmStatKind ToProto(KvmStatValue::Type type) {
  switch (type) {
    case KvmStatValue::Type::kCumulative:
      return v1::KVM_STAT_KIND_CUMULATIVE;
    case KvmStatValue::Type::kInstant:
      return v1::KVM_STAT_KIND_INSTANT;
    case KvmStatValue::Type::kPeak:
      return v1::KVM_STAT_KIND_PEAK;
    case KvmStatValue::Type::kLinearHist:
      return v1::KVM_STAT_KIND_LINEAR_HISTOGRAM;
    case KvmStatValue::Type::kLogHist:
      return v1::KVM_STAT_KIND_LOG_HISTOGRAM;
    case KvmStatValue::Type::kOther:
      break;
  }
  return v1::KVM_STAT_KIND_UNSPECIFIED;
}

// Bucket i holds [2^i, 2^(i+1)); bucket 0 also holds 0 (latency_histogram.h).
void ToProto(const pci::LatencyHistogram& h, v1::LatencyHistogram* out) {
  out->set_count(h.count);
  out->set_min_ns(h.min_ns);
  out->set_max_ns(h.max_ns);
  out->set_sum_ns(h.sum_ns);
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    if (h.buckets[i] == 0) continue;
    v1::HistogramBucket* b = out->add_buckets();
    b->set_lower_ns(i == 0 ? 0 : 1ull << i);
    b->set_upper_ns(i + 1 < 64 ? 1ull << (i + 1) : UINT64_MAX);
    b->set_count(h.buckets[i]);
  }
}

namespace {

void MapToProto(const pci::MapEvent& e, v1::BarMappingEvent* out) {
  out->set_op(ToProto(e.kind));
  *out->mutable_bdf() = ToProto(e.bdf);
  out->set_bar(static_cast<uint32_t>(e.bar));
  out->set_gpa(e.gpa);
  out->set_size(e.size);
  out->set_duration_ns(e.ns);
}

void ConfigToProto(const pci::ConfigAccess& a, v1::ConfigAccessEvent* out) {
  out->set_path(ToProto(a.path));
  out->set_write(a.direction == mmio::Direction::kWrite);
  *out->mutable_bdf() = ToProto(a.bdf);
  out->set_offset(a.reg);
  out->set_width(a.width);
  out->set_value(a.value);
  out->set_vcpu(a.vcpu);
}

}  // namespace

void ToProto(const EventRecord& r, v1::Event* out) {
  out->set_sequence(r.sequence);
  out->set_time_ns(r.time_ns);
  switch (r.kind) {
    case EventKind::kBarMapping:
      MapToProto(r.map, out->mutable_bar_mapping());
      break;
    case EventKind::kConfigAccess:
      ConfigToProto(r.config, out->mutable_config_access());
      break;
    case EventKind::kBootMarker:
      out->mutable_boot_marker()->set_boot_ns(r.boot_ns);
      out->mutable_boot_marker()->set_vcpu(r.vcpu);
      break;
    case EventKind::kStateChange:
      out->mutable_state_change()->set_state(ToProto(r.state));
      out->mutable_state_change()->set_exit_code(r.exit_code);
      break;
    case EventKind::kBootTimeout:
      out->mutable_boot_timeout();
      break;
  }
}

void ToProto(const platform::BootTimeoutReport& r, v1::BootTimeoutEvent* out) {
  out->set_timeout_ns(static_cast<uint64_t>(absl::ToInt64Nanoseconds(r.timeout)));
  out->set_last_console_line(r.last_console_line);
  for (const platform::VcpuBootState& v : r.vcpus) {
    v1::VcpuBootState* o = out->add_vcpus();
    o->set_vcpu(v.vcpu);
    if (v.rip) o->set_rip(*v.rip);
    if (v.last_exit != kvm::VcpuExitStats::kNoExit)
      o->set_last_exit_reason(kvm::ExitReasonName(v.last_exit));
    o->set_exits(v.exits);
  }
}

void ToProto(const base::BootProfile& p, v1::BootProfile* out) {
  for (int i = 0; i < base::kBootPhaseCount; ++i) {
    const auto phase = static_cast<base::BootPhase>(i);
    if (const std::optional<int64_t> ns = p.ns(phase)) {
      v1::BootProfile::Phase* ph = out->add_phases();
      ph->set_name(std::string(base::BootPhaseName(phase)));
      ph->set_ns(*ns);
    }
  }
  if (const std::optional<int64_t> up = p.guest_uptime_ns()) out->set_guest_uptime_ns(*up);
  out->set_start_from_kernel(p.start_from_kernel());
}

}  // namespace pcivmm::api
