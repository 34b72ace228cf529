#pragma once
// A minimal, strict DER reader for the structures we read in bulk (CRLs with a million entries),
// the counterpart of DerWriter. It never copies: values are spans into the input. Anything that is
// not DER (indefinite or non-minimal lengths, high tag numbers, lengths past the end of the
// enclosing value) is an Error naming the field and its byte offset, never an over-read.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/error.hpp"

namespace ca::crypto {

// One value read from a larger input. Small (32 bytes): each of a million CRL entries passes
// several of these through a Result.
struct DerValue {
  uint8_t tag = 0;
  uint8_t header_size = 0;  // tag and length octets
  std::span<const uint8_t> content;
  std::size_t offset = 0;  // of the tag, from the start of the outermost input

  // Tag, length and content: what a signature covers.
  std::span<const uint8_t> whole() const { return {content.data() - header_size, header_size + content.size()}; }
};

class DerReader {
 public:
  explicit DerReader(std::span<const uint8_t> der) : rest_(der), origin_(der.data()) {}
  // A reader over the content of a value a reader returned; offsets in its messages stay those of
  // the outermost input.
  static DerReader inside(const DerValue& value) {
    return DerReader(value.content, value.content.data() - value.header_size - value.offset);
  }

  bool at_end() const { return rest_.empty(); }
  // Whether the next value has this tag (to decide on OPTIONAL and DEFAULT fields).
  bool next_is(uint8_t tag) const { return !rest_.empty() && rest_[0] == tag; }
  std::size_t offset() const { return static_cast<std::size_t>(rest_.data() - origin_); }

  // The next value, which must carry `tag`; `what` names it in the error.
  [[nodiscard]] Result<DerValue> read(uint8_t tag, std::string_view what);
  // The next value, whatever its tag.
  [[nodiscard]] Result<DerValue> read_any(std::string_view what);
  // An error if bytes are left after the last field of `what`.
  [[nodiscard]] Status expect_end(std::string_view what) const;

 private:
  DerReader(std::span<const uint8_t> rest, const uint8_t* origin) : rest_(rest), origin_(origin) {}
  std::span<const uint8_t> rest_;
  const uint8_t* origin_;
};

// "SEQUENCE (0x30)", "INTEGER (0x02)", ... or "another tag", for messages.
std::string_view der_tag_name(uint8_t tag);

// Decoders of primitive values, each checking the DER rules for its type. `what` names the field.
// A non-negative INTEGER that fits in 64 bits.
[[nodiscard]] Result<uint64_t> der_to_uint64(const DerValue& integer, std::string_view what);
// The big-endian magnitude of a non-negative INTEGER (its sign octet 0x00 removed; zero is {0x00}).
[[nodiscard]] Result<std::span<const uint8_t>> der_to_magnitude(const DerValue& integer, std::string_view what);
// UTCTime (YYMMDDHHMMSSZ, YY >= 50 is 19YY) or GeneralizedTime (YYYYMMDDHHMMSSZ) as seconds since
// the epoch (RFC 5280 4.1.2.5: seconds present, no fraction, always Zulu).
[[nodiscard]] Result<int64_t> der_to_unix_time(const DerValue& time, std::string_view what);

}  // namespace ca::crypto
