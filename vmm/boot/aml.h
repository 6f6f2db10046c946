// A tiny ACPI Machine Language (AML) encoder: just what the DSDT of a VM needs (ACPI 6.4,
// chapter 20 "ACPI Machine Language Specification" and 6.4 "Resource Data Types").
//
// Every builder returns the encoded bytes of one term; callers nest them, so a Device's body
// is the concatenation of its terms. Names and EISA IDs are string literals checked at compile
// time (consteval), so a malformed one is a build error, never a bad table at run time.
#ifndef PCIVMM_VMM_BOOT_AML_H_
#define PCIVMM_VMM_BOOT_AML_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace pcivmm::boot::aml {

using Bytes = std::vector<uint8_t>;

// ACPI 6.4, 20.2.2 Name Objects Encoding: "NameSeg := <LeadNameChar NameChar NameChar
// NameChar>" with LeadNameChar 'A'-'Z' or '_' and NameChar also '0'-'9'; a NameString is an
// optional RootChar '\' or PrefixPath of '^'s, then NameSegs joined by '.' here (as in ASL).
// Segments shorter than four characters are padded with '_' (ASL's rule).
constexpr bool IsValidNamePath(std::string_view path);

// ACPI 6.4, 19.6.35 EISAID: "a 7-character text string: three uppercase letters and four
// hexadecimal digits" compressed to a 32-bit integer (letters 5 bits each, stored big-endian).
constexpr std::optional<uint32_t> CompressEisaId(std::string_view id);

namespace internal {
void InvalidAmlNameOrEisaId();  // never defined: calling it in a consteval context is an error
}  // namespace internal

// A NameString checked at compile time ("\\_SB.PCI0", "_HID", "^PCI0").
class NamePath {
 public:
  consteval NamePath(const char* path) : path_(path) {  // NOLINT(google-explicit-constructor)
    if (!IsValidNamePath(path_)) internal::InvalidAmlNameOrEisaId();
  }
  constexpr std::string_view str() const { return path_; }

 private:
  std::string_view path_;
};

// An EISA ID checked and compressed at compile time: EisaId("PNP0A08").value() == 0x080AD041.
class EisaId {
 public:
  consteval EisaId(const char* id) : value_(Compress(id)) {}  // NOLINT(google-explicit-constructor)
  constexpr uint32_t value() const { return value_; }

 private:
  static consteval uint32_t Compress(std::string_view id) {
    const std::optional<uint32_t> v = CompressEisaId(id);
    if (!v) internal::InvalidAmlNameOrEisaId();
    return *v;
  }
  uint32_t value_;
};

// ---- Encodings (ACPI 6.4, 20.2) ----

// PkgLength for a body of `body_size` bytes: the encoded length counts itself plus the body.
// Bodies of 2^28 bytes or more cannot be encoded (a programmer error; our DSDT is a few KiB).
Bytes PkgLength(size_t body_size);
Bytes EncodeName(NamePath path);
// The shortest of ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix, QWordPrefix.
Bytes Integer(uint64_t value);
// An EISA ID as a DWordConst (what ASL compilers emit for EISAID()).
Bytes EisaIdConst(EisaId id);
// StringPrefix, the ASCII characters, NUL. `s` must be 7-bit ASCII without NUL.
Bytes String(std::string_view s);
Bytes Concat(absl::Span<const Bytes> parts);

// ---- Terms ----

Bytes Name(NamePath name, const Bytes& object);
Bytes Scope(NamePath name, absl::Span<const Bytes> terms);
Bytes Device(NamePath name, absl::Span<const Bytes> terms);
// `arg_count` 0..7 (more is a programmer error and is masked).
Bytes Method(NamePath name, uint8_t arg_count, bool serialized, absl::Span<const Bytes> terms);
Bytes Return(const Bytes& value);
// At most 255 elements (a programmer error otherwise).
Bytes Package(absl::Span<const Bytes> elements);
Bytes Buffer(const Bytes& data);

// ---- Resource templates (ACPI 6.4, 6.4) ----

// _MEM, type specific flags of a memory address space descriptor (6.4.3.5.1, Table 6.50).
enum class Caching : uint8_t {
  kNonCacheable = 0,
  kCacheable = 1,
  kWriteCombining = 2,
  kPrefetchable = 3,
};

// Address space descriptors for a bridge's windows: ResourceProducer, MinFixed, MaxFixed,
// PosDecode, granularity 0, no translation, length max - min + 1; max >= min.
Bytes WordBusNumber(uint16_t min, uint16_t max);
Bytes WordIo(uint16_t min, uint16_t max);                        // EntireRange
Bytes DWordMemory(uint32_t min, uint32_t max, Caching caching);  // ReadWrite
Bytes QWordMemory(uint64_t min, uint64_t max, Caching caching);  // ReadWrite
// IO(Decode16, min, max, alignment, length).
Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length);
// IRQNoFlags: ISA IRQs 0..15 as a bit mask (bit n = IRQ n).
Bytes IrqNoFlags(uint16_t irq_mask);

struct InterruptFlags {
  bool consumer = true;
  bool edge = false;  // false: level triggered
  bool active_low = false;
  bool shared = false;
};
// Extended Interrupt descriptor (Interrupt(...){gsis}); 1..255 GSIs.
Bytes Interrupt(InterruptFlags flags, absl::Span<const uint32_t> gsis);

// A ResourceTemplate: Buffer(descriptors..., EndTag) where the EndTag's checksum makes the
// bytes of the descriptors and the EndTag sum to zero.
Bytes ResourceTemplate(absl::Span<const Bytes> descriptors);

// ---- constexpr definitions ----

constexpr bool IsLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
constexpr bool IsNameChar(char c) { return IsLeadNameChar(c) || (c >= '0' && c <= '9'); }

constexpr bool IsValidNameSeg(std::string_view seg) {
  if (seg.empty() || seg.size() > 4 || !IsLeadNameChar(seg[0])) return false;
  return std::ranges::all_of(seg, IsNameChar);
}

constexpr bool IsValidNamePath(std::string_view path) {
  if (!path.empty() && path[0] == '\\') {
    path.remove_prefix(1);
  } else {
    while (!path.empty() && path[0] == '^') path.remove_prefix(1);
  }
  if (path.empty()) return false;  // NullName is not needed by any builder
  size_t segments = 0;
  for (size_t dot = 0; dot != std::string_view::npos; ++segments) {
    dot = path.find('.');
    if (!IsValidNameSeg(path.substr(0, dot))) return false;
    path.remove_prefix(dot == std::string_view::npos ? path.size() : dot + 1);
  }
  return segments <= 255;  // MultiNamePrefix SegCount is a byte
}

constexpr std::optional<uint32_t> HexDigit(char c) {
  if (c >= '0' && c <= '9') return static_cast<uint32_t>(c - '0');
  if (c >= 'A' && c <= 'F') return static_cast<uint32_t>(c - 'A' + 10);
  return std::nullopt;
}

constexpr std::optional<uint32_t> CompressEisaId(std::string_view id) {
  if (id.size() != 7) return std::nullopt;
  uint32_t be = 0;  // the four bytes in memory order, most significant first
  for (size_t i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') return std::nullopt;
    be = (be << 5) | static_cast<uint32_t>(id[i] - '@');  // 'A' = 1
  }
  for (size_t i = 3; i < 7; ++i) {
    const std::optional<uint32_t> d = HexDigit(id[i]);
    if (!d) return std::nullopt;
    be = (be << 4) | *d;
  }
  // Bit 31 of the big-endian form is reserved (0); the DWord is its byte swap.
  return ((be & 0xFF) << 24) | ((be & 0xFF00) << 8) | ((be >> 8) & 0xFF00) | (be >> 24);
}

}  // namespace pcivmm::boot::aml

#endif  // PCIVMM_VMM_BOOT_AML_H_
