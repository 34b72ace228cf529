// core/time_text: every format the CA writes, and parsing back what was written.
#include "core/time_text.hpp"

#include <gtest/gtest.h>

namespace ca {
namespace {

// 2049-12-31T23:59:58Z and 2050-01-01T00:00:00Z, the UTCTime/GeneralizedTime boundary of RFC 5280.
const TimePoint kLate2049 = std::chrono::sys_days(std::chrono::year(2049) / 12 / 31) + std::chrono::hours(23) +
                            std::chrono::minutes(59) + std::chrono::seconds(58);
const TimePoint k2050 = std::chrono::sys_days(std::chrono::year(2050) / 1 / 1);

TEST(TimeText, WritesEachFormatInUtcAndWholeSeconds) {
  const TimePoint t = kLate2049 + std::chrono::milliseconds(999);
  EXPECT_EQ(utc_text(t, kGeneralizedTime), "20491231235958Z");
  EXPECT_EQ(utc_text(t, kUtcTime), "491231235958Z");
  EXPECT_EQ(utc_text(t, kIso8601), "2049-12-31T23:59:58Z");
  EXPECT_EQ(utc_text(t, kHttpDate), "Fri, 31 Dec 2049 23:59:58 GMT");
  EXPECT_EQ(utc_year(kLate2049), 2049);
  EXPECT_EQ(utc_year(k2050), 2050);
}

TEST(TimeText, ParsesWhatItWroteAndNothingLonger) {
  for (const char* format : {kGeneralizedTime, kIso8601, kHttpDate}) {
    SCOPED_TRACE(format);
    auto back = parse_utc_text(utc_text(kLate2049, format), format);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, kLate2049);
    EXPECT_FALSE(parse_utc_text(utc_text(kLate2049, format) + "x", format));
  }
  EXPECT_FALSE(parse_utc_text("yesterday", kHttpDate));
  EXPECT_FALSE(parse_utc_text("", kIso8601));
}

TEST(TimeText, ABrokenDownUtcTimeIsNotReadAsLocalTime) {
  std::tm tm{};
  tm.tm_year = 2050 - 1900;
  tm.tm_mon = 0;
  tm.tm_mday = 1;
  EXPECT_EQ(from_utc_tm(tm), k2050);
}

}  // namespace
}  // namespace ca
