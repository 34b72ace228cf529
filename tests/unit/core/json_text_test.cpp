// JSON string literals for the line logs (every byte sequence gives one valid literal) and the
// strict flat-object reader the audit verifier uses.
#include "core/json_text.hpp"

#include <string>

#include <gtest/gtest.h>

namespace ca {
namespace {

TEST(JsonTextTest, QuotesBackslashesAndControlCharactersAreEscaped) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(json_string("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(json_string(std::string("nul\0x\x1b\x7f", 7)), "\"nul\\u0000x\\u001b\\u007f\"");
  EXPECT_EQ(json_string(""), "\"\"");
}

TEST(JsonTextTest, Utf8StaysAndBrokenBytesBecomeReplacementCharacters) {
  EXPECT_EQ(json_string("Jürgen ✓ 𝄞"), "\"Jürgen ✓ 𝄞\"");
  // A lone continuation byte, a truncated sequence, an overlong '/', a surrogate, beyond U+10FFFF.
  EXPECT_EQ(json_string("a\x80z"), "\"a\xEF\xBF\xBDz\"");
  EXPECT_EQ(json_string("\xE2\x9C"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(json_string("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(json_string("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(json_string("\xF4\x90\x80\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

TEST(JsonTextTest, WhatIsWrittenReadsBackTheSame) {
  const std::string hostile = "/x\"},\"status\":200,\"y\":{\"\n\\u0041 ✓";
  std::string line = "{\"path\":" + json_string(hostile) + ",\"status\":404}";
  auto parsed = parse_flat_json_object(line);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("path").text, hostile);
  EXPECT_EQ(parsed->at("status").kind, FlatJsonValue::Kind::number);
  EXPECT_EQ(parsed->at("status").as_unsigned(), 404u);
}

TEST(JsonTextTest, ReaderDecodesEscapesAndSurrogatePairs) {
  auto parsed = parse_flat_json_object(R"( { "a" : "\u00e9\ud834\udd1e\/\b\f" , "n" : -1.5e3 } )");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->at("a").text, "é𝄞/\b\f");
  EXPECT_EQ(parsed->at("n").text, "-1.5e3");
  EXPECT_FALSE(parsed->at("n").as_unsigned());
  EXPECT_TRUE(parse_flat_json_object("{}"));
}

TEST(JsonTextTest, ReaderRefusesWhatIsNotAFlatObject) {
  for (const char* bad : {"", "[]", "{\"a\":1", "{\"a\":1}x", "{\"a\":{}}", "{\"a\":true}", "{\"a\":1,\"a\":2}",
                          "{\"a\":\"\\ud834\"}", "{\"a\":\"\\udd1e\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\\q\"}",
                          "{a:1}", "{\"a\":1,}", "{\"a\":-}"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_flat_json_object(bad));
  }
}

TEST(JsonTextTest, UnsignedIntegersOnly) {
  const auto number = [](std::string text) { return FlatJsonValue{FlatJsonValue::Kind::number, std::move(text)}; };
  EXPECT_EQ(number("0").as_unsigned(), 0u);
  EXPECT_EQ(number("18446744073709551").as_unsigned(), 18446744073709551u);
  EXPECT_FALSE(number("01").as_unsigned());
  EXPECT_FALSE(number("1.0").as_unsigned());
  EXPECT_FALSE(number("-1").as_unsigned());
  EXPECT_FALSE((FlatJsonValue{FlatJsonValue::Kind::string, "7"}.as_unsigned()));
}

}  // namespace
}  // namespace ca
