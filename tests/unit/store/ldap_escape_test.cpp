// RFC 4515 filter and RFC 4514 DN escaping (the store test FilterValuesFromOutsideAreEscaped checks it on slapd).
#include "store/ldap/ldap_escape.hpp"

#include <gtest/gtest.h>

namespace ca::store {
namespace {

TEST(LdapEscapeTest, FilterValuesPerRfc4515) {
  EXPECT_EQ(escape_filter_value("plain"), "plain");
  EXPECT_EQ(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
  EXPECT_EQ(escape_filter_value(std::string("a\0b", 3)), "a\\00b");
  EXPECT_EQ(escape_filter_value("back\\slash"), "back\\5cslash");
}

TEST(LdapEscapeTest, DnValuesPerRfc4514) {
  EXPECT_EQ(escape_dn_value("Example, Inc."), "Example\\, Inc.");
  EXPECT_EQ(escape_dn_value(" lead"), "\\ lead");
  EXPECT_EQ(escape_dn_value("#hash"), "\\#hash");
  EXPECT_EQ(escape_dn_value("a+b=c"), "a\\+b\\=c");
}

}  // namespace
}  // namespace ca::store
