#include "store/records.hpp"
#include "core/time_text.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

#include <fmt/format.h>

namespace ca::store {

std::string_view range_kind_name(RangeKind kind) {
  switch (kind) {
    case RangeKind::serial:
      return "serial";
    case RangeKind::request:
      return "request";
    case RangeKind::replica:
      return "replica";
  }
  return "?";
}

std::string format_range(const NumberRange& r) { return fmt::format("{}-{}", r.begin, r.end); }

std::optional<NumberRange> parse_range(std::string_view text) {
  auto dash = text.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  NumberRange r;
  auto a = text.substr(0, dash), b = text.substr(dash + 1);
  if (std::from_chars(a.data(), a.data() + a.size(), r.begin).ec != std::errc{}) return std::nullopt;
  if (std::from_chars(b.data(), b.data() + b.size(), r.end).ec != std::errc{}) return std::nullopt;
  if (r.end < r.begin) return std::nullopt;
  return r;
}

std::string canonical_hex(std::string_view hex) {
  std::string out;
  for (char c : hex) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto nz = out.find_first_not_of('0');
  return nz == std::string::npos ? "0" : out.substr(nz);
}

std::string fixed_width_hex(std::string_view hex) {
  std::string c = canonical_hex(hex);
  return c.size() >= 40 ? c : std::string(40 - c.size(), '0') + c;
}

std::string fixed_width_hex(uint64_t value) { return fmt::format("{:040x}", value); }

std::string to_generalized_time(TimePoint t) { return utc_text(t, kGeneralizedTime); }

std::string to_iso8601(TimePoint t) { return utc_text(t, kIso8601); }

std::optional<TimePoint> from_generalized_time(std::string_view text) {
  if (text.size() < 15 || text.back() != 'Z') return std::nullopt;
  std::tm tm{};
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    return std::from_chars(text.data() + pos, text.data() + pos + len, out).ec == std::errc{};
  };
  int y, mo, d, h, mi, s;
  if (!num(0, 4, y) || !num(4, 2, mo) || !num(6, 2, d) || !num(8, 2, h) || !num(10, 2, mi) || !num(12, 2, s))
    return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return from_utc_tm(tm);
}

std::string compose_serial_hex(uint64_t number, uint64_t random_bits) {
  return fmt::format("{:x}{:016x}", number, random_bits);
}

std::optional<uint64_t> number_of_serial(std::string_view serial_hex) {
  std::string c = canonical_hex(serial_hex);
  if (c.size() <= kSerialRandomBits / 4 || c.size() > kSerialRandomBits / 4 + 16) return std::nullopt;
  std::string_view high(c.data(), c.size() - kSerialRandomBits / 4);
  uint64_t v = 0;
  if (std::from_chars(high.data(), high.data() + high.size(), v, 16).ec != std::errc{}) return std::nullopt;
  return v;
}

std::string serial_search_bound(uint64_t number, bool upper) {
  return fixed_width_hex(fmt::format("{:x}{}", number, upper ? "ffffffffffffffff" : "0000000000000000"));
}

}  // namespace ca::store
