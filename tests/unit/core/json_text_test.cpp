// JSON string literals for the line logs (every byte sequence gives one valid literal) and the
// strict reader (Boost.JSON, duplicate keys refused) of log lines and message bodies.
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
  auto parsed = parse_json_object_text(line);
  ASSERT_TRUE(parsed) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->at("path").as_string(), hostile);
  EXPECT_EQ(parsed->at("status").as_int64(), 404);
}

TEST(JsonTextTest, BrokenBytesWrittenAsReplacementCharactersReadBackAsThem) {
  auto parsed = parse_json_object_text("{\"p\":" + json_string("a\x80z") + "}");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->at("p").as_string(), "a\xEF\xBF\xBDz");
}

TEST(JsonTextTest, ReaderDecodesEscapesAndSurrogatePairs) {
  auto parsed = parse_json_object_text(R"( { "a" : "\u00e9\ud834\udd1e\/\b\f" , "n" : -1.5e3, "k": {"x": [1, null]} } )");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->at("a").as_string(), "é𝄞/\b\f");
  EXPECT_EQ(parsed->at("n").as_double(), -1500.0);
  EXPECT_TRUE(parse_json_object_text("{}"));
  EXPECT_TRUE(parse_json_text("[1,2]"));
}

TEST(JsonTextTest, ReaderRefusesWhatIsNotStrictJson) {
  for (const char* bad : {"", "{\"a\":1", "{\"a\":1}x", "{\"a\":1} {}", "{\"a\":1,\"a\":2}", "{\"o\":{\"a\":1,\"a\":2}}",
                          "{\"a\":\"\\ud834\"}", "{\"a\":\"\\udd1e\"}", "{\"a\":\"\\ud834\\u0041\"}",
                          "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}", "{\"a\":\"\\q\"}", "{a:1}", "{\"a\":1,}",
                          "{\"a\":-}", "{\"a\":01}", "{\"a\":1 /* no */}", "{\"a\":\"\xC0\xAF\"}", "{\"a\":\"\x80\"}"}) {
    SCOPED_TRACE(bad);
    auto parsed = parse_json_text(bad);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, ErrorCode::bad_request);
    EXPECT_TRUE(parsed.error().message.starts_with("malformed JSON at offset ")) << parsed.error().message;
  }
}

TEST(JsonTextTest, ADuplicateKeyIsNamed) {
  auto parsed = parse_json_text(R"({"seq":1,"prev":"x","seq":2})");
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("duplicate key 'seq'"), std::string::npos) << parsed.error().message;
  // The same key in two objects is no duplicate.
  EXPECT_TRUE(parse_json_text(R"({"a":{"k":1},"b":{"k":2}})"));
}

TEST(JsonTextTest, AnObjectIsRequiredWhereOneIsAskedFor) {
  for (const char* other : {"[]", "1", "\"s\"", "null"}) {
    SCOPED_TRACE(other);
    auto parsed = parse_json_object_text(other);
    ASSERT_FALSE(parsed);
    EXPECT_TRUE(parsed.error().message.starts_with("expected a JSON object, got ")) << parsed.error().message;
  }
}

}  // namespace
}  // namespace ca
