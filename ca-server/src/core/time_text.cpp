#include "core/time_text.hpp"

namespace ca {

namespace {
std::tm utc_tm(TimePoint t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}
}  // namespace

std::string utc_text(TimePoint t, const char* format) {
  const std::tm tm = utc_tm(t);
  char buf[128];
  const std::size_t n = std::strftime(buf, sizeof buf, format, &tm);
  return std::string(buf, n);
}

std::optional<TimePoint> parse_utc_text(std::string_view text, const char* format) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), format, &tm);
  if (!end || *end != '\0') return std::nullopt;
  return from_utc_tm(tm);
}

TimePoint from_utc_tm(std::tm tm) { return std::chrono::system_clock::from_time_t(timegm(&tm)); }

int utc_year(TimePoint t) { return utc_tm(t).tm_year + 1900; }

}  // namespace ca
