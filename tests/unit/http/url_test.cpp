#include "http/url.hpp"

#include <gtest/gtest.h>

namespace ca::http {
namespace {

struct DecodeCase {
  const char* input;
  bool plus_is_space;
  const char* expected;  // nullptr: a bad_request
};

TEST(PercentDecode, Cases) {
  const DecodeCase cases[] = {
      {"plain", false, "plain"},
      {"a%20b", false, "a b"},
      {"%41%62%2f", false, "Ab/"},
      {"a+b", false, "a+b"},
      {"a+b", true, "a b"},
      {"%2B", true, "+"},
      {"", false, ""},
      {"%", false, nullptr},
      {"%4", false, nullptr},
      {"%zz", false, nullptr},
      {"a%00b", false, nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto decoded = percent_decode(c.input, c.plus_is_space);
    if (c.expected) {
      ASSERT_TRUE(decoded) << decoded.error().message;
      EXPECT_EQ(*decoded, c.expected);
    } else {
      ASSERT_FALSE(decoded);
      EXPECT_TRUE(decoded.error().is(ErrorCode::bad_request));
    }
  }
}

TEST(ParseQuery, DecodesKeysAndValues) {
  auto query = parse_query("status=VALID&subject=cn%3Dalice+smith&flag&&size=20");
  ASSERT_TRUE(query) << query.error().message;
  EXPECT_EQ(*query, (std::map<std::string, std::string>{
                        {"status", "VALID"}, {"subject", "cn=alice smith"}, {"flag", ""}, {"size", "20"}}));
}

TEST(ParseQuery, FirstOfRepeatedKeysWins) {
  auto query = parse_query("a=1&a=2");
  ASSERT_TRUE(query);
  EXPECT_EQ(query->at("a"), "1");
}

TEST(ParseQuery, MalformedEscapeIsBadRequest) {
  auto query = parse_query("a=%G1");
  ASSERT_FALSE(query);
  EXPECT_TRUE(query.error().is(ErrorCode::bad_request));
}

}  // namespace
}  // namespace ca::http
