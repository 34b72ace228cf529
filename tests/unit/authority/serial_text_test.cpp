// Serial numbers as Dogtag's XML interface prints them (authority/serial_text decimal_text):
// canonical hex to decimal, checked against values computed with Python's int(hex, 16), and "0"
// for what is not hex.
#include "authority/issuance/serial_text.hpp"

#include <gtest/gtest.h>

namespace ca::authority {
namespace {

TEST(DecimalText, ConvertsCanonicalHex) {
  const struct {
    const char* hex;
    const char* decimal;  // python3 -c 'print(int(hex, 16))'
  } cases[] = {
      {"0", "0"},
      {"1", "1"},
      {"a", "10"},
      {"ff", "255"},
      {"FF", "255"},
      {"1a2b", "6699"},
      {"ffffffffffffffff", "18446744073709551615"},
      {"10000000000000000", "18446744073709551616"},  // past 64 bits
      {"9f3a6c1e5b7d2048ace13579", "49278744834706447478393222521"},
      {"ffffffffffffffffffffffffffffffffffffffff", "1461501637330902918203684832716283019655932542975"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.hex);
    EXPECT_EQ(decimal_text(c.hex), c.decimal);
  }
}

TEST(DecimalText, WhatIsNotHexGivesZero) {
  for (const char* text : {"", "g", "0x1f", "12g4", "ff ", " ff", "1a.2", "\xc3\xa9"}) {
    SCOPED_TRACE(text);
    EXPECT_EQ(decimal_text(text), "0");
  }
}

TEST(DecimalText, AgreesWithParseNumberText) {
  // What a user types in decimal comes back as the same decimal digits.
  for (const char* typed : {"6699", "255", "49278744834706447478393222521"}) {
    SCOPED_TRACE(typed);
    auto hex = parse_number_text(typed, "serial number");
    ASSERT_TRUE(hex) << hex.error().message;
    EXPECT_EQ(decimal_text(*hex), typed);
  }
}

}  // namespace
}  // namespace ca::authority
