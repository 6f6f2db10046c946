#include "api/config_convert.h"

#include <bit>
#include <set>

#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"
#include "pci/vfio/vfio_device.h"
#include "vmm/base/read_file.h"
#include "vmm/base/status_macros.h"

namespace pcivmm::api {
namespace {

constexpr uint64_t kMaxRamMib = 1ull << 20;  // 1 TiB
constexpr uint32_t kMaxEcamBuses = 256;      // PCIe Base 4.0, 7.2.2: 8 bus-number bits
constexpr uint64_t kMaxConfigFileBytes = 1ull << 20;

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

absl::Status MachineFromConfig(const v1::MachineConfig& c, platform::MachineConfig* m) {
  const uint64_t ram_mib = c.has_ram_mib() ? c.ram_mib() : m->ram_bytes >> 20;
  if (ram_mib < 2 || ram_mib > kMaxRamMib) {
    return Invalid(absl::StrFormat("machine.ram_mib: %d is outside 2..%d", ram_mib, kMaxRamMib));
  }
  m->ram_bytes = ram_mib << 20;
  const uint32_t vcpus = c.has_vcpus() ? c.vcpus() : 1;
  if (vcpus < 1 || vcpus > static_cast<uint32_t>(platform::Machine::kMaxVcpus)) {
    return Invalid(
        absl::StrFormat("machine.vcpus: %d is outside 1..%d", vcpus, platform::Machine::kMaxVcpus));
  }
  m->vcpus = static_cast<int>(vcpus);
  return absl::OkStatus();
}

// A port from its config: the kind's placement rules (pci/device_spec.h, PortKind).
absl::StatusOr<pci::DeviceSpec> PortFromConfig(const v1::PciePort& c, int i) {
  const std::string field = absl::StrFormat("pci.ports[%d]", i);
  if (c.name().empty()) return Invalid(field + ".name: must not be empty");
  const bool root = c.kind() == v1::PORT_KIND_ROOT_PORT;
  const bool up = c.kind() == v1::PORT_KIND_SWITCH_UPSTREAM;
  if (!root && !up && c.kind() != v1::PORT_KIND_SWITCH_DOWNSTREAM) {
    return Invalid(
        absl::StrFormat("%s.kind: %s is not a port kind", field, v1::PortKind_Name(c.kind())));
  }
  const uint32_t low = root ? 1 : 0;
  const uint32_t high = up ? 0 : 31;
  if (c.slot() < low || c.slot() > high) {
    return Invalid(absl::StrFormat("%s.slot: %d is outside %d..%d for a %s", field, c.slot(), low,
                                   high, v1::PortKind_Name(c.kind())));
  }
  if (root == !c.parent().empty()) {
    return Invalid(field + (root ? ".parent: a root port sits on bus 0"
                                 : ".parent: a switch port names the port above it"));
  }
  if (c.physical_slot() > 8191 || (up && c.physical_slot() != 0)) {
    return Invalid(absl::StrFormat("%s.physical_slot: %d (root and downstream ports: 1..8191)",
                                   field, c.physical_slot()));
  }
  if (c.hotplug() && c.physical_slot() == 0) {
    return Invalid(field + ".hotplug: needs a physical_slot");
  }
  const int slot = static_cast<int>(c.slot());
  const int physical_slot = static_cast<int>(c.physical_slot());
  if (root) return pci::RootPortDevice(c.name(), slot, physical_slot, c.hotplug());
  if (up) return pci::SwitchUpstreamDevice(c.name(), c.parent());
  return pci::SwitchDownstreamDevice(c.name(), c.parent(), slot, physical_slot, c.hotplug());
}

// Names are unique across ports and devices; a switch port's parent is listed before it;
// root ports take bus 0 slots like devices do.
absl::Status PortsFromConfig(const v1::PciConfig& c, platform::PciConfig* p,
                             std::set<std::string>& names, std::set<uint32_t>& bus0_slots) {
  for (int i = 0; i < c.ports_size(); ++i) {
    const v1::PciePort& port = c.ports(i);
    PCIVMM_ASSIGN_OR_RETURN(pci::DeviceSpec spec, PortFromConfig(port, i));
    if (!port.parent().empty() && !names.contains(port.parent())) {
      return Invalid(absl::StrFormat("pci.ports[%d].parent: '%s' is not a port listed before it", i,
                                     port.parent()));
    }
    if (!names.insert(port.name()).second) {
      return Invalid(absl::StrFormat("pci.ports[%d].name: '%s' is used twice", i, port.name()));
    }
    if (port.kind() == v1::PORT_KIND_ROOT_PORT && !bus0_slots.insert(port.slot()).second) {
      return Invalid(absl::StrFormat("pci.ports[%d].slot: %d is used twice", i, port.slot()));
    }
    p->devices.push_back(std::move(spec));
  }
  return absl::OkStatus();
}

absl::StatusOr<pci::DeviceSpec> DeviceFromConfig(const v1::PciDevice& d, int i) {
  const std::string field = absl::StrFormat("pci.devices[%d]", i);
  if (d.name().empty()) return Invalid(field + ".name: must not be empty");
  if (!d.port().empty() && d.slot() != 0) {
    return Invalid(absl::StrFormat(
        "%s.slot: %d: behind a port a device is device 0 (PCIe r5.0, 7.3.1)", field, d.slot()));
  }
  if (d.port().empty() && (d.slot() < 1 || d.slot() > 31)) {
    return Invalid(absl::StrFormat("%s.slot: %d is outside 1..31", field, d.slot()));
  }
  if (d.model() != v1::DEVICE_MODEL_GPU_LIKE) {
    return Invalid(absl::StrFormat("%s.model: %s is not a device model pcivmm emulates", field,
                                   v1::DeviceModel_Name(d.model())));
  }
  const uint64_t gib = d.bar1_gib() == 0 ? kDefaultGpuBar1Gib : d.bar1_gib();
  if (!std::has_single_bit(gib) || gib > (1ull << 16)) {
    return Invalid(
        absl::StrFormat("%s.bar1_gib: %d is not a power of two in 1..65536", field, d.bar1_gib()));
  }
  pci::DeviceSpec spec = pci::GpuLikeDevice(d.name(), static_cast<int>(d.slot()), gib << 30);
  spec.ecam_fast_path = !d.has_ecam_fast_path() || d.ecam_fast_path();
  spec.parent = d.port();
  return spec;
}

// Ports first (pci/pci_bus.h adds a parent before what sits behind it), then the devices: a
// device's port is one of the ports and holds one device only.
absl::Status DevicesFromConfig(const v1::PciConfig& c, platform::PciConfig* p) {
  std::set<std::string> names;
  std::set<uint32_t> slots;
  PCIVMM_RETURN_IF_ERROR(PortsFromConfig(c, p, names, slots));
  const std::set<std::string> ports = names;
  std::set<std::string> used_ports;
  for (int i = 0; i < c.devices_size(); ++i) {
    const v1::PciDevice& d = c.devices(i);
    PCIVMM_ASSIGN_OR_RETURN(pci::DeviceSpec spec, DeviceFromConfig(d, i));
    if (!names.insert(d.name()).second) {
      return Invalid(absl::StrFormat("pci.devices[%d].name: '%s' is used twice", i, d.name()));
    }
    if (!d.port().empty() && !ports.contains(d.port())) {
      return Invalid(
          absl::StrFormat("pci.devices[%d].port: '%s' is not in pci.ports", i, d.port()));
    }
    if (!d.port().empty() && !used_ports.insert(d.port()).second) {
      return Invalid(
          absl::StrFormat("pci.devices[%d].port: '%s' already holds a device", i, d.port()));
    }
    if (d.port().empty() && !slots.insert(d.slot()).second) {
      return Invalid(absl::StrFormat("pci.devices[%d].slot: %d is used twice", i, d.slot()));
    }
    p->devices.push_back(std::move(spec));
  }
  return absl::OkStatus();
}

absl::StatusOr<platform::VfioDeviceConfig> VfioFromConfig(const v1::VfioDevice& d, int i) {
  const std::string field = absl::StrFormat("pci.vfio_devices[%d]", i);
  auto address = vfio::NormalizePciAddress(d.host_address());
  if (!address.ok()) {
    return Invalid(absl::StrFormat("%s.host_address: %s", field, address.status().message()));
  }
  if (d.slot() > 31) {
    return Invalid(
        absl::StrFormat("%s.slot: %d is outside 1..31 (0: the next free one)", field, d.slot()));
  }
  platform::VfioDeviceConfig c;
  c.host_address = *address;
  c.slot = static_cast<int>(d.slot());
  c.name = d.name();
  c.forward_msi = !d.has_forward_msi() || d.forward_msi();
  c.config_fast_path = d.has_config_fast_path() && d.config_fast_path();
  c.mmap_bars = !d.has_mmap_bars() || d.mmap_bars();
  return c;
}

// Slots and names must not clash with each other or with the emulated devices.
absl::Status VfioDevicesFromConfig(const v1::PciConfig& c, platform::PciConfig* p) {
  std::set<std::string> addresses;
  std::set<int> slots;
  for (const pci::DeviceSpec& d : p->devices) slots.insert(d.slot);
  for (int i = 0; i < c.vfio_devices_size(); ++i) {
    PCIVMM_ASSIGN_OR_RETURN(platform::VfioDeviceConfig v, VfioFromConfig(c.vfio_devices(i), i));
    if (!addresses.insert(v.host_address).second) {
      return Invalid(absl::StrFormat("pci.vfio_devices[%d].host_address: %s is passed twice", i,
                                     v.host_address));
    }
    if (v.slot != 0 && !slots.insert(v.slot).second) {
      return Invalid(absl::StrFormat("pci.vfio_devices[%d].slot: %d is used twice", i, v.slot));
    }
    p->vfio.push_back(std::move(v));
  }
  return absl::OkStatus();
}

absl::StatusOr<pci::MapPolicy> PolicyFromConfig(v1::BarPolicy policy, const char* field) {
  switch (policy) {
    case v1::BAR_POLICY_UNSPECIFIED:
    case v1::BAR_POLICY_EAGER:
      return pci::MapPolicy::kEager;
    case v1::BAR_POLICY_DEFERRED:
      return pci::MapPolicy::kDeferred;
    default:
      return Invalid(absl::StrFormat("%s: %d is not a BarPolicy", field, policy));
  }
}

absl::Status PciFromConfig(const v1::PciConfig& c, platform::PciConfig* p) {
  // Bus 0 and one secondary bus per port, unless more are asked for.
  const uint32_t needed = 1 + static_cast<uint32_t>(c.ports_size());
  const uint32_t buses = c.has_ecam_buses() ? c.ecam_buses() : needed;
  if (buses < 1 || buses > kMaxEcamBuses) {
    return Invalid(absl::StrFormat("pci.ecam_buses: %d is outside 1..%d", buses, kMaxEcamBuses));
  }
  if (buses < needed) {
    return Invalid(absl::StrFormat(
        "pci.ecam_buses: %d is fewer than the %d buses of bus 0 and the ports' secondary buses",
        buses, needed));
  }
  p->bus_count = static_cast<int>(buses);
  p->pio_enabled = !c.has_pio_enabled() || c.pio_enabled();
  p->ecam_fast_path = c.has_ecam_fast_path() && c.ecam_fast_path();
  p->hand_off.memory_decode = !c.has_memory_decode() || c.memory_decode();
  PCIVMM_ASSIGN_OR_RETURN(p->bar_policy, PolicyFromConfig(c.bar_policy(), "pci.bar_policy"));
  if (c.bar_cost_ns_per_gib() > kMaxCostNsPerGib) {
    return Invalid(absl::StrFormat("pci.bar_cost_ns_per_gib: %d is above %d (1 s per GiB)",
                                   c.bar_cost_ns_per_gib(), kMaxCostNsPerGib));
  }
  p->bar_cost.ns_per_gib = c.bar_cost_ns_per_gib();
  PCIVMM_RETURN_IF_ERROR(DevicesFromConfig(c, p));
  return VfioDevicesFromConfig(c, p);
}

absl::Status GuestFromConfig(const v1::VmConfig& c, VmSpec* spec) {
  switch (c.guest_case()) {
    case v1::VmConfig::kTestGuest:
      if (c.test_guest().image_path().empty()) {
        return Invalid("test_guest.image_path: must not be empty");
      }
      PCIVMM_RETURN_IF_ERROR(
          platform::Machine::CheckTestGuestVcpus(spec->machine.vcpus, "machine.vcpus"));
      spec->guest = TestGuestConfig{c.test_guest().image_path(), c.test_guest().arg()};
      return absl::OkStatus();
    case v1::VmConfig::kLinuxBoot:
      if (c.linux_boot().kernel_path().empty()) {
        return Invalid("linux_boot.kernel_path: must not be empty");
      }
      spec->guest =
          platform::LinuxBootConfig{c.linux_boot().kernel_path(), c.linux_boot().initrd_path(),
                                    c.linux_boot().cmdline(), c.linux_boot().pvm_guest_kernel()};
      return absl::OkStatus();
    default:
      return Invalid("guest: set test_guest (--guest-image) or linux_boot (--kernel)");
  }
}

}  // namespace

absl::StatusOr<v1::VmConfig> ParseVmConfigJson(std::string_view json) {
  v1::VmConfig config;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto st = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &config, options);
  if (!st.ok()) return Invalid(absl::StrFormat("config: %s", st.message().as_string()));
  return config;
}

absl::StatusOr<v1::VmConfig> ReadVmConfigFile(const std::string& path) {
  PCIVMM_ASSIGN_OR_RETURN(
      std::string text,
      base::ReadBoundedFile(path, kMaxConfigFileBytes, "--config-file", "a VmConfig is a few KiB"));
  auto config = ParseVmConfigJson(text);
  if (!config.ok()) {
    return Invalid(absl::StrFormat("--config-file %s: %s", path, config.status().message()));
  }
  return config;
}

void OverlayVmConfig(const v1::VmConfig& overrides, v1::VmConfig* base) {
  if (overrides.pci().devices_size() > 0) base->mutable_pci()->clear_devices();
  if (overrides.pci().ports_size() > 0) base->mutable_pci()->clear_ports();
  if (overrides.pci().vfio_devices_size() > 0) base->mutable_pci()->clear_vfio_devices();
  // The same kind of guest merges field by field (--guest-arg alone keeps the file's image).
  if (overrides.guest_case() != v1::VmConfig::GUEST_NOT_SET &&
      overrides.guest_case() != base->guest_case()) {
    base->clear_test_guest();
    base->clear_linux_boot();
  }
  base->MergeFrom(overrides);
}

absl::StatusOr<VmSpec> VmSpecFromConfig(const v1::VmConfig& config) {
  VmSpec spec;
  PCIVMM_RETURN_IF_ERROR(MachineFromConfig(config.machine(), &spec.machine));
  PCIVMM_RETURN_IF_ERROR(PciFromConfig(config.pci(), &spec.pci));
  PCIVMM_RETURN_IF_ERROR(GuestFromConfig(config, &spec));
  spec.test_devices = !config.has_test_devices() || config.test_devices();
  if (config.has_console_path() && config.console_path().empty()) {
    return Invalid("console_path: must not be empty when set");
  }
  spec.console_path = config.console_path();
  return spec;
}

namespace {

v1::PortKind PortKindToConfig(pci::PortKind k) {
  switch (k) {
    case pci::PortKind::kRootPort:
      return v1::PORT_KIND_ROOT_PORT;
    case pci::PortKind::kSwitchUpstream:
      return v1::PORT_KIND_SWITCH_UPSTREAM;
    case pci::PortKind::kSwitchDownstream:
      return v1::PORT_KIND_SWITCH_DOWNSTREAM;
    case pci::PortKind::kNone:
      break;
  }
  return v1::PORT_KIND_UNSPECIFIED;
}

void PortToConfig(const pci::DeviceSpec& d, v1::PciePort* out) {
  out->set_name(d.name);
  out->set_kind(PortKindToConfig(d.port));
  out->set_slot(static_cast<uint32_t>(d.slot));
  out->set_parent(d.parent);
  out->set_physical_slot(static_cast<uint32_t>(d.physical_slot));
  out->set_hotplug(d.hotplug);
}

void DevicesToConfig(const platform::PciConfig& p, v1::PciConfig* c) {
  for (const pci::DeviceSpec& d : p.devices) {
    if (d.port != pci::PortKind::kNone) {
      PortToConfig(d, c->add_ports());
      continue;
    }
    v1::PciDevice* out = c->add_devices();
    out->set_name(d.name);
    out->set_slot(static_cast<uint32_t>(d.slot));
    out->set_port(d.parent);
    out->set_model(v1::DEVICE_MODEL_GPU_LIKE);
    for (const pci::BarSpec& b : d.bars) {
      if (b.index == 1) out->set_bar1_gib(b.size >> 30);
    }
    out->set_ecam_fast_path(d.ecam_fast_path);
  }
  for (const platform::VfioDeviceConfig& v : p.vfio) {
    v1::VfioDevice* out = c->add_vfio_devices();
    out->set_host_address(v.host_address);
    out->set_slot(static_cast<uint32_t>(v.slot));
    out->set_name(v.name);
    out->set_forward_msi(v.forward_msi);
    out->set_config_fast_path(v.config_fast_path);
    out->set_mmap_bars(v.mmap_bars);
  }
}

}  // namespace

v1::VmConfig ConfigFromSpec(const VmSpec& spec) {
  v1::VmConfig c;
  c.mutable_machine()->set_ram_mib(spec.machine.ram_bytes >> 20);
  c.mutable_machine()->set_vcpus(static_cast<uint32_t>(spec.machine.vcpus));
  v1::PciConfig* p = c.mutable_pci();
  p->set_ecam_buses(static_cast<uint32_t>(spec.pci.bus_count));
  p->set_pio_enabled(spec.pci.pio_enabled);
  p->set_ecam_fast_path(spec.pci.ecam_fast_path);
  p->set_memory_decode(spec.pci.hand_off.memory_decode);
  p->set_bar_policy(spec.pci.bar_policy == pci::MapPolicy::kEager ? v1::BAR_POLICY_EAGER
                                                                  : v1::BAR_POLICY_DEFERRED);
  p->set_bar_cost_ns_per_gib(spec.pci.bar_cost.ns_per_gib);
  DevicesToConfig(spec.pci, p);
  if (const auto* t = std::get_if<TestGuestConfig>(&spec.guest)) {
    c.mutable_test_guest()->set_image_path(t->image_path);
    c.mutable_test_guest()->set_arg(t->arg);
  } else if (const auto* l = std::get_if<platform::LinuxBootConfig>(&spec.guest)) {
    c.mutable_linux_boot()->set_kernel_path(l->kernel_path);
    c.mutable_linux_boot()->set_initrd_path(l->initrd_path);
    c.mutable_linux_boot()->set_cmdline(l->cmdline);
    c.mutable_linux_boot()->set_pvm_guest_kernel(l->pvm_guest_kernel);
  }
  if (!spec.console_path.empty()) c.set_console_path(spec.console_path);
  c.set_test_devices(spec.test_devices);
  return c;
}

}  // namespace pcivmm::api
