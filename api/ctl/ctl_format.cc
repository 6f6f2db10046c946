#include "api/ctl/ctl_format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace pcivmm::ctl {
namespace {

// "VM_STATE_RUNNING" -> "RUNNING" for an enum prefix of `prefix_len` characters.
std::string Short(const std::string& name, size_t prefix_len) {
  return name.size() > prefix_len ? name.substr(prefix_len) : name;
}

std::string State(v1::VmState s) { return Short(v1::VmState_Name(s), sizeof("VM_STATE_") - 1); }

std::string Path(v1::ConfigPath p) {
  return absl::AsciiStrToLower(Short(v1::ConfigPath_Name(p), sizeof("CONFIG_PATH_") - 1));
}

std::string Policy(v1::BarPolicy p) {
  return absl::AsciiStrToLower(Short(v1::BarPolicy_Name(p), sizeof("BAR_POLICY_") - 1));
}

std::string Bytes(uint64_t n) {
  if (n >= (1ull << 30)) return absl::StrFormat("%.1f GiB", static_cast<double>(n) / (1ull << 30));
  if (n >= (1ull << 20)) return absl::StrFormat("%.1f MiB", static_cast<double>(n) / (1ull << 20));
  if (n >= (1ull << 10)) return absl::StrFormat("%.1f KiB", static_cast<double>(n) / (1ull << 10));
  return absl::StrFormat("%d B", n);
}

std::string Seconds(uint64_t ns) {
  return absl::StrFormat("%.3f s", static_cast<double>(ns) / 1e9);
}

// "boot timeout after 1.000 s: no boot marker; last console line "..."; vcpu 0 rip 0x100046
// last exit IO (2 exits); ..."
std::string BootTimeout(const v1::BootTimeoutEvent& t) {
  std::string line = absl::StrFormat("boot timeout after %s: no boot marker; last console line ",
                                     Seconds(t.timeout_ns()));
  absl::StrAppend(&line, t.last_console_line().empty()
                             ? "none"
                             : absl::StrCat("\"", t.last_console_line(), "\""));
  for (const v1::VcpuBootState& v : t.vcpus()) {
    absl::StrAppendFormat(&line, "; vcpu %d rip %s last exit %s (%d exits)", v.vcpu(),
                          v.has_rip() ? absl::StrFormat("%#x", v.rip()) : "unknown",
                          v.last_exit_reason().empty() ? "none" : v.last_exit_reason(), v.exits());
  }
  return line;
}

std::string Guest(const v1::VmConfig& c) {
  if (c.has_test_guest()) {
    return absl::StrFormat("test image %s, arg %d", c.test_guest().image_path(),
                           c.test_guest().arg());
  }
  if (c.has_linux_boot()) {
    return absl::StrFormat("linux %s, initrd %s, cmdline \"%s\"", c.linux_boot().kernel_path(),
                           c.linux_boot().initrd_path(), c.linux_boot().cmdline());
  }
  return "none";
}

const char* BarKindName(v1::BarKind k) {
  switch (k) {
    case v1::BAR_KIND_IO:
      return "io";
    case v1::BAR_KIND_MEM32:
      return "mem32";
    case v1::BAR_KIND_MEM64:
      return "mem64";
    default:
      return "?";
  }
}

void AppendExits(const v1::ExitStats& e, std::string* out) {
  absl::StrAppendFormat(out, "exits: %d total\n", e.total());
  for (const auto& r : e.by_reason())
    absl::StrAppendFormat(out, "  %-16s %12d\n", r.reason(), r.count());
  if (e.by_port_size() > 0) absl::StrAppend(out, "pio exits by port:\n");
  for (const auto& p : e.by_port()) {
    absl::StrAppendFormat(out, "  %#06x in %12d out %12d\n", p.port(), p.reads(), p.writes());
  }
  if (e.by_mmio_region_size() > 0) absl::StrAppend(out, "mmio exits by region:\n");
  for (const auto& r : e.by_mmio_region()) {
    absl::StrAppendFormat(out, "  %-20s read %12d write %12d\n", r.name(), r.reads(), r.writes());
  }
  if (e.by_vcpu_size() > 0) absl::StrAppend(out, "exits by vcpu:\n");
  for (const auto& v : e.by_vcpu())
    absl::StrAppendFormat(out, "  vcpu %-3d %12d\n", v.vcpu(), v.total());
}

void AppendConfig(const v1::ConfigStats& c, std::string* out) {
  absl::StrAppend(out, "config accesses by path:\n");
  for (const auto& p : c.by_path()) {
    absl::StrAppendFormat(out, "  %-5s read %12d write %12d malformed %d\n", Path(p.path()),
                          p.reads(), p.writes(), p.malformed());
  }
  if (c.by_function_size() > 0) absl::StrAppend(out, "config accesses by function:\n");
  for (const auto& f : c.by_function()) {
    absl::StrAppendFormat(out, "  %s %-5s read %12d write %12d\n", BdfText(f.bdf()), Path(f.path()),
                          f.reads(), f.writes());
  }
  if (c.by_register_size() > 0) absl::StrAppend(out, "config accesses by register:\n");
  for (const auto& r : c.by_register()) {
    absl::StrAppendFormat(out, "  %s %#05x %-5s read %12d write %12d\n", BdfText(r.bdf()),
                          r.offset(), Path(r.path()), r.reads(), r.writes());
  }
}

void AppendKvm(const v1::KvmStats& k, std::string* out) {
  if (!k.available()) {
    if (!k.unavailable_reason().empty())
      absl::StrAppend(out, "kvm stats: ", k.unavailable_reason(), "\n");
    return;
  }
  absl::StrAppend(out, "kvm stats (vm):\n");
  for (const auto& s : k.vm()) {
    if (s.value() != 0)
      absl::StrAppendFormat(out, "  %-32s %14d %s\n", s.name(), s.value(), s.unit());
  }
  for (const auto& v : k.vcpus()) {
    absl::StrAppendFormat(out, "kvm stats (vcpu %d):\n", v.vcpu());
    for (const auto& s : v.stats()) {
      if (s.value() != 0)
        absl::StrAppendFormat(out, "  %-32s %14d %s\n", s.name(), s.value(), s.unit());
    }
  }
}

}  // namespace

std::string BdfText(const v1::Bdf& b) {
  return absl::StrFormat("%02x:%02x.%x", b.bus(), b.device(), b.function());
}

std::string FormatInfo(const v1::GetVmInfoResponse& i) {
  std::string out;
  absl::StrAppendFormat(&out, "state        %s\n", State(i.state()));
  if (i.state() == v1::VM_STATE_STOPPED) {
    absl::StrAppendFormat(&out, "stopped      exit status %d: %s\n", i.exit_code(),
                          i.stop_detail());
  }
  absl::StrAppendFormat(&out, "guest        %s\n", Guest(i.config()));
  absl::StrAppendFormat(&out, "pid          %d\nvcpus        %d\nram          %s\n", i.pid(),
                        i.vcpus(), Bytes(i.ram_bytes()));
  absl::StrAppendFormat(&out, "uptime       %s\n", Seconds(i.uptime_ns()));
  absl::StrAppendFormat(&out, "kvm          %s (%s), %s\n", i.kvm().flavour(), i.kvm().reason(),
                        i.kvm().where());
  absl::StrAppendFormat(&out, "boot marker  %s\n",
                        i.has_boot_ns() ? Seconds(i.boot_ns()) : std::string("not yet"));
  absl::StrAppendFormat(&out, "config paths pio %s, ecam fast path %s\n",
                        i.config_mode().pio_enabled() ? "on" : "off",
                        i.config_mode().ecam_fast_path() ? "on" : "off");
  absl::StrAppendFormat(&out, "bar policy   %s, cost model %d ns/GiB\n", Policy(i.bar_policy()),
                        i.bar_cost_ns_per_gib());
  if (i.ecam_fast_path().enabled()) {
    absl::StrAppendFormat(&out,
                          "ecam fast    %d read-only slot(s), shadow %s, %d trapping function(s)\n",
                          i.ecam_fast_path().slots(), Bytes(i.ecam_fast_path().shadow_bytes()),
                          i.ecam_fast_path().trapping_functions());
  }
  const v1::HostMemory& m = i.memory();
  absl::StrAppendFormat(&out,
                        "memory       rss %s (anon %s, file %s, shmem %s), guest RAM resident %s, "
                        "overhead %s, ecam shadow %s\n",
                        Bytes(m.rss_bytes()), Bytes(m.rss_anon_bytes()), Bytes(m.rss_file_bytes()),
                        Bytes(m.rss_shmem_bytes()), Bytes(m.guest_ram_resident_bytes()),
                        Bytes(m.overhead_bytes()), Bytes(m.ecam_shadow_bytes()));
  return out;
}

std::string FormatDevices(const v1::ListDevicesResponse& d) {
  std::string out =
      absl::StrFormat("%d function(s), %d ECAM bus(es)\n", d.functions_size(), d.ecam_buses());
  for (const auto& f : d.functions()) {
    absl::StrAppendFormat(&out, "%s %04x:%04x class %06x cmd %04x %s%s\n", BdfText(f.bdf()),
                          f.vendor_id(), f.device_id(), f.class_code(), f.command(), f.name(),
                          f.passthrough() ? " (VFIO passthrough)" : "");
    for (const auto& b : f.bars()) {
      absl::StrAppendFormat(&out, "    BAR%d %-5s%s %#14x size %#x%s\n", b.index(),
                            BarKindName(b.kind()), b.prefetchable() ? " pref" : "     ",
                            b.address(), b.size(),
                            b.has_mapped_gpa() ? absl::StrFormat(" mapped at %#x", b.mapped_gpa())
                                               : std::string(" not mapped"));
    }
    if (f.rom_size() != 0) {
      absl::StrAppendFormat(&out, "    ROM            %#14x size %#x\n", f.rom_address(),
                            f.rom_size());
    }
  }
  return out;
}

std::string FormatStats(const v1::GetStatsResponse& s) {
  std::string out = absl::StrFormat("state %s, at %s\n", State(s.state()), Seconds(s.time_ns()));
  AppendExits(s.exits(), &out);
  AppendConfig(s.config(), &out);
  AppendKvm(s.kvm(), &out);
  return out;
}

std::string FormatMapping(const v1::MappingStats& m) {
  std::string out = absl::StrFormat("bar mapping (%s, cost model %d ns/GiB):\n", Policy(m.policy()),
                                    m.cost_ns_per_gib());
  for (const auto& b : m.bars()) {
    const auto& h = b.ioctl();
    absl::StrAppendFormat(
        &out,
        "  %s %-8s BAR%d maps %d unmaps %d moves %d conflicts %d ioctl n=%d "
        "min %dns max %dns sum %dns modelled %dns %s\n",
        BdfText(b.bdf()), b.device(), b.bar(), b.maps(), b.unmaps(), b.moves(), b.conflicts(),
        h.count(), h.min_ns(), h.max_ns(), h.sum_ns(), b.modelled_ns(),
        b.has_mapped_gpa() ? absl::StrFormat("at %#x", b.mapped_gpa()) : "unmapped");
  }
  const auto& t = m.totals();
  absl::StrAppendFormat(
      &out, "  total maps %d unmaps %d moves %d conflicts %d ioctl %d sum %dns modelled %dns\n",
      t.maps(), t.unmaps(), t.moves(), t.conflicts(), t.ioctl_count(), t.ioctl_sum_ns(),
      t.modelled_ns());
  return out;
}

std::string FormatEvent(const v1::Event& e) {
  std::string head =
      absl::StrFormat("#%-6d %12.6f ", e.sequence(), static_cast<double>(e.time_ns()) / 1e9);
  switch (e.event_case()) {
    case v1::Event::kBarMapping: {
      const auto& m = e.bar_mapping();
      return absl::StrCat(
          head, absl::StrFormat("bar %-8s %s BAR%d gpa %#x size %#x in %dns",
                                absl::AsciiStrToLower(Short(v1::BarMappingOp_Name(m.op()),
                                                            sizeof("BAR_MAPPING_OP_") - 1)),
                                BdfText(m.bdf()), m.bar(), m.gpa(), m.size(), m.duration_ns()));
    }
    case v1::Event::kConfigAccess: {
      const auto& c = e.config_access();
      return absl::StrCat(
          head, absl::StrFormat("config %-4s %-5s %s %#05x/%d = %#x vcpu %d", Path(c.path()),
                                c.write() ? "write" : "read", BdfText(c.bdf()), c.offset(),
                                c.width(), c.value(), c.vcpu()));
    }
    case v1::Event::kBootMarker:
      return absl::StrCat(
          head, absl::StrFormat("boot marker after %s (vcpu %d)",
                                Seconds(e.boot_marker().boot_ns()), e.boot_marker().vcpu()));
    case v1::Event::kBootTimeout:
      return absl::StrCat(head, BootTimeout(e.boot_timeout()));
    case v1::Event::kStateChange: {
      const auto& s = e.state_change();
      std::string line = absl::StrCat(head, "state ", State(s.state()));
      if (s.state() == v1::VM_STATE_STOPPED) {
        absl::StrAppendFormat(&line, " (exit status %d%s%s)", s.exit_code(),
                              s.detail().empty() ? "" : ": ", s.detail());
      }
      return line;
    }
    default:
      return absl::StrCat(head, "unknown event");
  }
}

}  // namespace pcivmm::ctl
