// The strict DER reader: lengths, tags and the primitive decoders, on hand-written bytes.
#include "crypto/der_reader.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ca::crypto {
namespace {

using Bytes = std::vector<uint8_t>;

// The first value of `der`, which must carry `tag`.
Result<DerValue> first_value(const Bytes& der, uint8_t tag) {
  DerReader reader(der);
  return reader.read(tag, "value");
}

bool mentions(const Error& error, std::string_view text) { return error.message.find(text) != std::string::npos; }

TEST(DerReaderTest, ReadsNestedValuesWithTheirOffsets) {
  const Bytes der{0x30, 0x06, 0x02, 0x01, 0x05, 0x04, 0x01, 0xaa};
  DerReader reader(der);
  auto sequence = reader.read(0x30, "outer");
  ASSERT_TRUE(sequence) << sequence.error().message;
  EXPECT_TRUE(reader.at_end());
  EXPECT_EQ(sequence->whole().size(), der.size());
  DerReader fields = DerReader::inside(*sequence);
  EXPECT_TRUE(fields.next_is(0x02));
  auto integer = fields.read(0x02, "integer");
  ASSERT_TRUE(integer);
  EXPECT_EQ(integer->offset, 2u);
  auto octets = fields.read(0x04, "octets");
  ASSERT_TRUE(octets);
  EXPECT_EQ(octets->offset, 5u);
  EXPECT_EQ(octets->content[0], 0xaa);
  EXPECT_TRUE(fields.expect_end("outer"));
  auto missing = fields.read(0x02, "third");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(mentions(missing.error(), "third at byte 8: missing")) << missing.error().message;
}

TEST(DerReaderTest, ReadsLongFormLengths) {
  Bytes der{0x04, 0x82, 0x01, 0x00};
  der.resize(4 + 256, 0x11);
  auto value = first_value(der, 0x04);
  ASSERT_TRUE(value) << value.error().message;
  EXPECT_EQ(value->content.size(), 256u);
}

TEST(DerReaderTest, RefusesWhatIsNotDer) {
  struct Case {
    const char* name;
    Bytes der;
    const char* message;
  };
  const Case cases[] = {
      {"wrong tag", {0x02, 0x01, 0x00}, "expected SEQUENCE (0x30), found tag 0x02"},
      {"no length", {0x30}, "truncated before its length"},
      {"indefinite length", {0x30, 0x80, 0x00, 0x00}, "indefinite length"},
      {"length past the end", {0x30, 0x05, 0x02, 0x01}, "length 5 runs past the end (2 bytes left)"},
      {"truncated long length", {0x30, 0x82, 0x01}, "truncated inside its length"},
      {"long form for a short length", {0x30, 0x81, 0x05, 0, 0, 0, 0, 0}, "long form for a short length"},
      {"leading zero length octet", {0x30, 0x82, 0x00, 0x80}, "leading zero octet"},
      {"five length octets", {0x30, 0x85, 1, 0, 0, 0, 0}, "length of 5 octets is too long"},
      {"high tag number", {0x3f, 0x01, 0x01, 0x00}, "high tag numbers"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    DerReader reader(c.der);
    auto value = c.der[0] == 0x3f ? reader.read_any("value") : reader.read(0x30, "value");
    ASSERT_FALSE(value);
    EXPECT_TRUE(value.error().is(ErrorCode::bad_request));
    EXPECT_TRUE(mentions(value.error(), c.message)) << value.error().message;
  }
}

TEST(DerReaderTest, ExpectEndReportsTrailingBytes) {
  const Bytes der{0x05, 0x00, 0xde, 0xad};
  DerReader reader(der);
  ASSERT_TRUE(reader.read(0x05, "null"));
  auto end = reader.expect_end("input");
  ASSERT_FALSE(end);
  EXPECT_TRUE(mentions(end.error(), "input at byte 2: 2 unexpected bytes")) << end.error().message;
}

TEST(DerReaderTest, DecodesNonNegativeIntegers) {
  EXPECT_EQ(der_to_uint64(*first_value({0x02, 0x01, 0x07}, 0x02), "n"), 7u);
  EXPECT_EQ(der_to_uint64(*first_value({0x02, 0x02, 0x00, 0x80}, 0x02), "n"), 0x80u);
  EXPECT_EQ(der_to_uint64(*first_value({0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0x02), "n"),
            UINT64_MAX);
  struct Case {
    const char* name;
    Bytes der;
    const char* message;
  };
  const Case cases[] = {
      {"empty", {0x02, 0x00}, "empty INTEGER"},
      {"negative", {0x02, 0x01, 0x80}, "negative INTEGER"},
      {"superfluous zero", {0x02, 0x02, 0x00, 0x7f}, "superfluous leading zero"},
      {"65 bits", {0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}, "9-octet INTEGER does not fit in 64 bits"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto value = der_to_uint64(*first_value(c.der, 0x02), "n");
    ASSERT_FALSE(value);
    EXPECT_TRUE(mentions(value.error(), c.message)) << value.error().message;
  }
}

TEST(DerReaderTest, MagnitudeDropsOnlyTheSignOctet) {
  const Bytes high_bit_der{0x02, 0x02, 0x00, 0x80}, zero_der{0x02, 0x01, 0x00};
  auto high_bit = der_to_magnitude(*first_value(high_bit_der, 0x02), "serial");
  ASSERT_TRUE(high_bit);
  EXPECT_EQ(Bytes(high_bit->begin(), high_bit->end()), Bytes{0x80});
  auto zero = der_to_magnitude(*first_value(zero_der, 0x02), "serial");
  ASSERT_TRUE(zero);
  EXPECT_EQ(Bytes(zero->begin(), zero->end()), Bytes{0x00});
}

Bytes time_value(uint8_t tag, std::string_view text) {
  Bytes der{tag, static_cast<uint8_t>(text.size())};
  der.insert(der.end(), text.begin(), text.end());
  return der;
}

Result<int64_t> unix_time(uint8_t tag, std::string_view text) {
  const Bytes der = time_value(tag, text);
  DerReader reader(der);
  auto value = reader.read_any("time");
  if (!value) return fail(value.error());
  return der_to_unix_time(*value, "time");
}

TEST(DerReaderTest, DecodesUtcAndGeneralizedTime) {
  EXPECT_EQ(unix_time(0x17, "700101000000Z"), 0);
  EXPECT_EQ(unix_time(0x17, "500101000000Z"), -631152000);  // YY >= 50: 19YY
  EXPECT_EQ(unix_time(0x17, "491231235959Z"), 2524607999);  // YY < 50: 20YY
  EXPECT_EQ(unix_time(0x18, "20500101000000Z"), 2524608000);
  EXPECT_EQ(unix_time(0x18, "20240229120000Z"), 1709208000);
  EXPECT_EQ(unix_time(0x18, "99991231235959Z"), 253402300799);
}

TEST(DerReaderTest, RefusesTimesRfc5280DoesNotAllow) {
  const std::pair<uint8_t, const char*> cases[] = {
      {0x17, "7001010000Z"},          // no seconds
      {0x17, "700101000000+0100"},    // not Zulu
      {0x18, "20240101000000.5Z"},    // fraction
      {0x18, "2024010100000Z0"},      // Z misplaced
      {0x18, "20230229000000Z"},      // no 29 February in 2023
      {0x18, "20241301000000Z"},      // month 13
      {0x18, "20240101240000Z"},      // hour 24
      {0x18, "20240101006000Z"},      // minute 60
      {0x18, "20240101000060Z"},      // leap second
      {0x17, "7a0101000000Z"},        // not a digit
      {0x04, "700101000000Z"},        // not a time
  };
  for (const auto& [tag, text] : cases) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(unix_time(tag, text));
  }
}

}  // namespace
}  // namespace ca::crypto
