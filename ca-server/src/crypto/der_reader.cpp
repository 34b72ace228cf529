#include "crypto/der_reader.hpp"

#include <chrono>
#include <cstddef>

#include <fmt/format.h>

namespace ca::crypto {

namespace {

Error malformed(std::string_view what, std::size_t offset, std::string_view problem) {
  return Error::bad_request(fmt::format("{} at byte {}: {}", what, offset, problem));
}

// Lengths up to 4 octets (4 GiB) are enough for anything we read; more is refused, not wrapped.
constexpr std::size_t kMaxLengthOctets = 4;

// Digits at text[at], text[at + 1] as a number, or -1.
int two_digits(std::span<const uint8_t> text, std::size_t at) {
  uint8_t hi = text[at], lo = text[at + 1];
  if (hi < '0' || hi > '9' || lo < '0' || lo > '9') return -1;
  return (hi - '0') * 10 + (lo - '0');
}

}  // namespace

std::string_view der_tag_name(uint8_t tag) {
  switch (tag) {
    case 0x01:
      return "BOOLEAN (0x01)";
    case 0x02:
      return "INTEGER (0x02)";
    case 0x03:
      return "BIT STRING (0x03)";
    case 0x04:
      return "OCTET STRING (0x04)";
    case 0x05:
      return "NULL (0x05)";
    case 0x06:
      return "OBJECT IDENTIFIER (0x06)";
    case 0x0a:
      return "ENUMERATED (0x0a)";
    case 0x17:
      return "UTCTime (0x17)";
    case 0x18:
      return "GeneralizedTime (0x18)";
    case 0x30:
      return "SEQUENCE (0x30)";
    case 0x31:
      return "SET (0x31)";
    case 0xa0:
      return "[0] (0xa0)";
    default:
      return "another tag";
  }
}

Result<DerValue> DerReader::read(uint8_t tag, std::string_view what) {
  if (!rest_.empty() && rest_[0] != tag)
    return fail(malformed(what, offset(), fmt::format("expected {}, found tag 0x{:02x}", der_tag_name(tag), rest_[0])));
  return read_any(what);
}

Result<DerValue> DerReader::read_any(std::string_view what) {
  const std::size_t at = offset();
  if (rest_.empty()) return fail(malformed(what, at, "missing: the enclosing value ends here"));
  const uint8_t tag = rest_[0];
  if ((tag & 0x1f) == 0x1f) return fail(malformed(what, at, "high tag numbers are not supported"));
  if (rest_.size() < 2) return fail(malformed(what, at, "truncated before its length"));
  std::size_t length = rest_[1];
  std::size_t header = 2;
  if (length == 0x80) return fail(malformed(what, at, "indefinite length (not DER)"));
  if (length & 0x80) {
    const std::size_t octets = length & 0x7f;
    if (octets > kMaxLengthOctets)
      return fail(malformed(what, at, fmt::format("length of {} octets is too long", octets)));
    if (rest_.size() - header < octets) return fail(malformed(what, at, "truncated inside its length"));
    if (rest_[2] == 0) return fail(malformed(what, at, "length with a leading zero octet (not DER)"));
    length = 0;
    for (std::size_t i = 0; i < octets; ++i) length = length << 8 | rest_[header + i];
    header += octets;
    if (length < 0x80) return fail(malformed(what, at, "long form for a short length (not DER)"));
  }
  if (rest_.size() - header < length)
    return fail(
        malformed(what, at, fmt::format("length {} runs past the end ({} bytes left)", length, rest_.size() - header)));
  DerValue value{tag, static_cast<uint8_t>(header), rest_.subspan(header, length), at};
  rest_ = rest_.subspan(header + length);
  return value;
}

Status DerReader::expect_end(std::string_view what) const {
  if (rest_.empty()) return ok();
  return fail(malformed(what, offset(), fmt::format("{} unexpected bytes after its last field", rest_.size())));
}

Result<std::span<const uint8_t>> der_to_magnitude(const DerValue& integer, std::string_view what) {
  auto c = integer.content;
  if (integer.tag != 0x02)
    return fail(
        malformed(what, integer.offset, fmt::format("expected INTEGER (0x02), found tag 0x{:02x}", integer.tag)));
  if (c.empty()) return fail(malformed(what, integer.offset, "empty INTEGER"));
  if (c[0] & 0x80) return fail(malformed(what, integer.offset, "negative INTEGER"));
  if (c.size() > 1 && c[0] == 0) {
    if (!(c[1] & 0x80))
      return fail(malformed(what, integer.offset, "INTEGER with a superfluous leading zero (not DER)"));
    c = c.subspan(1);
  }
  return c;
}

Result<uint64_t> der_to_uint64(const DerValue& integer, std::string_view what) {
  CA_TRY(std::span<const uint8_t> magnitude, der_to_magnitude(integer, what));
  if (magnitude.size() > 8)
    return fail(
        malformed(what, integer.offset, fmt::format("{}-octet INTEGER does not fit in 64 bits", magnitude.size())));
  uint64_t value = 0;
  for (uint8_t b : magnitude) value = value << 8 | b;
  return value;
}

Result<int64_t> der_to_unix_time(const DerValue& time, std::string_view what) {
  const auto text = time.content;
  int year = 0;
  std::size_t at = 0;  // where the month starts
  if (time.tag == 0x17) {
    if (text.size() != 13) return fail(malformed(what, time.offset, "UTCTime is not YYMMDDHHMMSSZ"));
    int yy = two_digits(text, 0);
    if (yy < 0) return fail(malformed(what, time.offset, "UTCTime year is not two digits"));
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at = 2;
  } else if (time.tag == 0x18) {
    if (text.size() != 15) return fail(malformed(what, time.offset, "GeneralizedTime is not YYYYMMDDHHMMSSZ"));
    int century = two_digits(text, 0), yy = two_digits(text, 2);
    if (century < 0 || yy < 0) return fail(malformed(what, time.offset, "GeneralizedTime year is not four digits"));
    year = century * 100 + yy;
    at = 4;
  } else {
    return fail(
        malformed(what, time.offset,
                  fmt::format("expected UTCTime (0x17) or GeneralizedTime (0x18), found tag 0x{:02x}", time.tag)));
  }
  const int month = two_digits(text, at), day = two_digits(text, at + 2), hour = two_digits(text, at + 4),
            minute = two_digits(text, at + 6), second = two_digits(text, at + 8);
  if (month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || text[at + 10] != 'Z')
    return fail(malformed(what, time.offset, "time is not digits ending in Z"));
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return fail(malformed(what, time.offset, "no such date"));
  if (hour > 23 || minute > 59 || second > 59) return fail(malformed(what, time.offset, "no such time of day"));
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  return days * 86400 + static_cast<int64_t>(hour * 3600) + static_cast<int64_t>(minute * 60) + second;
}

}  // namespace ca::crypto
