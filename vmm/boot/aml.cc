#include "vmm/boot/aml.h"

#include <algorithm>
#include <cassert>

namespace pcivmm::boot::aml {
namespace {

// ACPI 6.4, 20.2 AML Grammar Definition: opcodes and prefixes.
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0A;
constexpr uint8_t kWordPrefix = 0x0B;
constexpr uint8_t kDWordPrefix = 0x0C;
constexpr uint8_t kStringPrefix = 0x0D;
constexpr uint8_t kQWordPrefix = 0x0E;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2E;
constexpr uint8_t kMultiNamePrefix = 0x2F;
constexpr uint8_t kExtOpPrefix = 0x5B;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kReturnOp = 0xA4;

void PutLe(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void Append(Bytes& out, const Bytes& more) { out.insert(out.end(), more.begin(), more.end()); }

// `opcode` (one or two bytes) PkgLength body.
Bytes WithPkgLength(std::initializer_list<uint8_t> opcode, const Bytes& body) {
  Bytes out(opcode);
  Append(out, PkgLength(body.size()));
  Append(out, body);
  return out;
}

// ACPI 6.4, 20.2.2: "NameSeg := <LeadNameChar NameChar NameChar NameChar> // Notice that
// NameSegs shorter than 4 characters are filled with trailing underscores ('_')".
void PutNameSeg(Bytes& out, std::string_view seg) {
  for (size_t i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(i < seg.size() ? seg[i] : '_'));
}

std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> segs;
  for (size_t dot = 0; dot != std::string_view::npos;) {
    dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path.remove_prefix(dot == std::string_view::npos ? path.size() : dot + 1);
  }
  return segs;
}

// ACPI 6.4, 6.4.3.5 Address Space Resource Descriptors: tag, length, _RT, general flags,
// type specific flags, then _GRA, _MIN, _MAX, _TRA, _LEN each `width` bytes wide.
Bytes AddressSpace(uint8_t tag, int width, uint8_t type, uint8_t type_flags, uint64_t min,
                   uint64_t max) {
  // General flags (Table 6.47): bit 3 _MAF and bit 2 _MIF set (fixed window), bit 1 _DEC
  // clear (positive decode), bit 0 clear ("this device produces and consumes this resource").
  constexpr uint8_t kProducerFixedWindow = 0x0C;
  Bytes out = {tag};
  PutLe(out, 3 + 5 * static_cast<uint64_t>(width), 2);
  out.insert(out.end(), {type, kProducerFixedWindow, type_flags});
  for (uint64_t field : {uint64_t{0}, min, max, uint64_t{0}, max - min + 1})
    PutLe(out, field, width);
  return out;
}

// Table 6.50, memory resource flag: bit 0 _RW (1 = read/write), bits 2:1 _MEM.
uint8_t MemoryFlags(Caching caching) {
  return static_cast<uint8_t>(1 | (static_cast<int>(caching) << 1));
}

}  // namespace

// ACPI 6.4, 20.2.4 Package Length Encoding: "bit 7-6: ByteData count that follows (0-3);
// bit 5-4: only used if PkgLength < 63; bit 3-0: least significant package length nybble".
// The encoded length includes the PkgLength bytes themselves.
Bytes PkgLength(size_t body_size) {
  if (body_size + 1 <= 0x3F) return {static_cast<uint8_t>(body_size + 1)};
  for (size_t follow = 1; follow <= 3; ++follow) {
    const size_t total = body_size + 1 + follow;
    if (total >= (size_t{1} << (4 + 8 * follow))) continue;
    Bytes out = {static_cast<uint8_t>((follow << 6) | (total & 0x0F))};
    PutLe(out, total >> 4, static_cast<int>(follow));
    return out;
  }
  assert(false && "AML package longer than 2^28 bytes");
  return {};
}

// ACPI 6.4, 20.2.2: "NameString := <RootChar NamePath> | <PrefixPath NamePath>;
// NamePath := NameSeg | DualNamePath | MultiNamePath; DualNamePath := DualNamePrefix NameSeg
// NameSeg; MultiNamePath := MultiNamePrefix SegCount NameSeg(SegCount)".
Bytes EncodeName(NamePath path) {
  std::string_view p = path.str();
  Bytes out;
  while (!p.empty() && (p[0] == '\\' || p[0] == '^')) {
    out.push_back(static_cast<uint8_t>(p[0]));
    p.remove_prefix(1);
  }
  const std::vector<std::string_view> segs = SplitSegments(p);
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) out.insert(out.end(), {kMultiNamePrefix, static_cast<uint8_t>(segs.size())});
  for (std::string_view seg : segs) PutNameSeg(out, seg);
  return out;
}

// ACPI 6.4, 20.2.3 Data Objects Encoding: "ComputationalData := ByteConst | WordConst |
// DWordConst | QWordConst | ... | ConstObj"; "ConstObj := ZeroOp | OneOp | OnesOp".
Bytes Integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= 0xFF) {
    out = {kBytePrefix};
    PutLe(out, value, 1);
  } else if (value <= 0xFFFF) {
    out = {kWordPrefix};
    PutLe(out, value, 2);
  } else if (value <= 0xFFFF'FFFF) {
    out = {kDWordPrefix};
    PutLe(out, value, 4);
  } else {
    out = {kQWordPrefix};
    PutLe(out, value, 8);
  }
  return out;
}

Bytes EisaIdConst(EisaId id) {
  Bytes out = {kDWordPrefix};
  PutLe(out, id.value(), 4);
  return out;
}

// ACPI 6.4, 20.2.3: "String := StringPrefix AsciiCharList NullChar".
Bytes String(std::string_view s) {
  Bytes out(s.size() + 2, 0);  // sized up front: GCC 12 misreports insert() into {prefix}
  out[0] = kStringPrefix;
  std::copy(s.begin(), s.end(), out.begin() + 1);
  return out;
}

Bytes Concat(absl::Span<const Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// ACPI 6.4, 20.2.5.1: "DefName := NameOp NameString DataRefObject".
Bytes Name(NamePath name, const Bytes& object) {
  Bytes out = {kNameOp};
  Append(out, EncodeName(name));
  Append(out, object);
  return out;
}

// ACPI 6.4, 20.2.5.1: "DefScope := ScopeOp PkgLength NameString TermList".
Bytes Scope(NamePath name, absl::Span<const Bytes> terms) {
  return WithPkgLength({kScopeOp}, Concat({EncodeName(name), Concat(terms)}));
}

// ACPI 6.4, 20.2.5.2: "DefDevice := DeviceOp PkgLength NameString TermList".
Bytes Device(NamePath name, absl::Span<const Bytes> terms) {
  return WithPkgLength({kExtOpPrefix, kDeviceOp}, Concat({EncodeName(name), Concat(terms)}));
}

// ACPI 6.4, 20.2.5.2: "DefMethod := MethodOp PkgLength NameString MethodFlags TermList;
// MethodFlags := ByteData // bit 0-2: ArgCount (0-7), bit 3: SerializeFlag, bit 4-7: SyncLevel".
Bytes Method(NamePath name, uint8_t arg_count, bool serialized, absl::Span<const Bytes> terms) {
  const auto flags = static_cast<uint8_t>((arg_count & 0x7) | (serialized ? 0x8 : 0));
  return WithPkgLength({kMethodOp}, Concat({EncodeName(name), Bytes{flags}, Concat(terms)}));
}

// ACPI 6.4, 20.2.5.3: "DefReturn := ReturnOp ArgObject".
Bytes Return(const Bytes& value) { return Concat({Bytes{kReturnOp}, value}); }

// ACPI 6.4, 20.2.5.4: "DefPackage := PackageOp PkgLength NumElements PackageElementList;
// NumElements := ByteData".
Bytes Package(absl::Span<const Bytes> elements) {
  assert(elements.size() <= 0xFF);
  const Bytes count = {static_cast<uint8_t>(elements.size())};
  return WithPkgLength({kPackageOp}, Concat({count, Concat(elements)}));
}

// ACPI 6.4, 20.2.5.4: "DefBuffer := BufferOp PkgLength BufferSize ByteList".
Bytes Buffer(const Bytes& data) {
  return WithPkgLength({kBufferOp}, Concat({Integer(data.size()), data}));
}

// ACPI 6.4, 6.4.3.5.3 Word Address Space Descriptor, _RT = 2 (bus number range); no type
// specific flags.
Bytes WordBusNumber(uint16_t min, uint16_t max) { return AddressSpace(0x88, 2, 2, 0, min, max); }

// 6.4.3.5.3, _RT = 1 (I/O); Table 6.51: bits 1:0 _RNG = 3 ("memory window covers the entire
// range").
Bytes WordIo(uint16_t min, uint16_t max) { return AddressSpace(0x88, 2, 1, 0x03, min, max); }

// ACPI 6.4, 6.4.3.5.2 DWord Address Space Descriptor, _RT = 0 (memory).
Bytes DWordMemory(uint32_t min, uint32_t max, Caching caching) {
  return AddressSpace(0x87, 4, 0, MemoryFlags(caching), min, max);
}

// ACPI 6.4, 6.4.3.5.1 QWord Address Space Descriptor, _RT = 0 (memory).
Bytes QWordMemory(uint64_t min, uint64_t max, Caching caching) {
  return AddressSpace(0x8A, 8, 0, MemoryFlags(caching), min, max);
}

// ACPI 6.4, 6.4.2.5 I/O Port Descriptor: "Byte 0 0x47; Byte 1 information (bit 0 _DEC: 1 =
// decodes 16-bit addresses); Bytes 2-3 _MIN; 4-5 _MAX; 6 _ALN; 7 _LEN".
Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out = {0x47, 0x01};
  PutLe(out, min, 2);
  PutLe(out, max, 2);
  out.insert(out.end(), {alignment, length});
  return out;
}

// ACPI 6.4, 6.4.3.4 32-Bit Fixed Memory Range Descriptor: "Byte 0 0x86; Bytes 1-2 length 9;
// Byte 3 information (bit 0 _RW); Bytes 4-7 base; Bytes 8-11 range length".
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length) {
  Bytes out = {0x86, 0x09, 0x00, static_cast<uint8_t>(read_write ? 1 : 0)};
  PutLe(out, base, 4);
  PutLe(out, length, 4);
  return out;
}

// ACPI 6.4, 6.4.2.1 IRQ Descriptor: "Type 0, Small Item Name 0x4, Length = 2 ... bit n of
// the mask = IRQn"; without the flags byte the IRQ is "high true, edge sensitive".
Bytes IrqNoFlags(uint16_t irq_mask) {
  Bytes out = {0x22};
  PutLe(out, irq_mask, 2);
  return out;
}

// ACPI 6.4, 6.4.3.6 Extended Interrupt Descriptor: "Byte 0 0x89; Bytes 1-2 length; Byte 3
// flags (bit 0 consumer, bit 1 _HE edge, bit 2 _LL active low, bit 3 _SHR); Byte 4 interrupt
// table length; then 32-bit interrupt numbers".
Bytes Interrupt(InterruptFlags flags, absl::Span<const uint32_t> gsis) {
  assert(!gsis.empty() && gsis.size() <= 0xFF);
  Bytes out = {0x89};
  PutLe(out, 2 + 4 * gsis.size(), 2);
  out.push_back(static_cast<uint8_t>((flags.consumer ? 1 : 0) | (flags.edge ? 2 : 0) |
                                     (flags.active_low ? 4 : 0) | (flags.shared ? 8 : 0)));
  out.push_back(static_cast<uint8_t>(gsis.size()));
  for (uint32_t gsi : gsis) PutLe(out, gsi, 4);
  return out;
}

// ACPI 6.4, 6.4.2.9 End Tag: "Byte 0 0x79; Byte 1 checksum covering all resource data after
// the checksum field that results in a zero sum". The template is the data of a Buffer.
Bytes ResourceTemplate(absl::Span<const Bytes> descriptors) {
  Bytes data = Concat(descriptors);
  data.push_back(0x79);
  uint8_t sum = 0;
  for (uint8_t b : data) sum = static_cast<uint8_t>(sum + b);
  data.push_back(static_cast<uint8_t>(-sum));
  return Buffer(data);
}

}  // namespace pcivmm::boot::aml
