#pragma once
// Times as text, always UTC and whole seconds: the one place that calls gmtime/strftime/timegm.
// The formats the CA speaks are named below; parse what was formatted with the same one.
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace ca {

using TimePoint = std::chrono::system_clock::time_point;

inline constexpr const char* kGeneralizedTime = "%Y%m%d%H%M%SZ";       // LDAP, X.509 GeneralizedTime
inline constexpr const char* kUtcTime = "%y%m%d%H%M%SZ";               // X.509 UTCTime (before 2050)
inline constexpr const char* kIso8601 = "%Y-%m-%dT%H:%M:%SZ";          // JSON, people
inline constexpr const char* kHttpDate = "%a, %d %b %Y %H:%M:%S GMT";  // RFC 9110 IMF-fixdate

// `t` (truncated to the second) as `format` (strftime, C locale names) in UTC.
std::string utc_text(TimePoint t, const char* format);
// The inverse: nullopt unless all of `text` matches `format`.
std::optional<TimePoint> parse_utc_text(std::string_view text, const char* format);
// A broken-down UTC time (from ASN1_TIME_to_tm, or fields read by hand) as a time point.
TimePoint from_utc_tm(std::tm tm);
// The year of `t` in UTC.
int utc_year(TimePoint t);

}  // namespace ca
