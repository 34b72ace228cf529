#include "core/error.hpp"

#include <gtest/gtest.h>

namespace ca {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return fail(Error::bad_request("not positive"));
  return v;
}

Result<int> doubled(int v) {
  CA_TRY(int x, parse_positive(v));
  return 2 * x;
}

Status checked(int v) {
  CA_CHECK(parse_positive(v));
  return ok();
}

TEST(ErrorTest, TryPropagatesTheFirstError) {
  EXPECT_EQ(*doubled(4), 8);
  auto r = doubled(-1);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(ErrorCode::bad_request));
  EXPECT_EQ(r.error().message, "not positive");
  EXPECT_TRUE(checked(1));
  EXPECT_FALSE(checked(0));
}

TEST(ErrorTest, ContextKeepsTheCode) {
  Error e = Error::unavailable("down").context("reading serial 0x1");
  EXPECT_TRUE(e.is(ErrorCode::unavailable));
  EXPECT_EQ(e.message, "reading serial 0x1: down");
  EXPECT_EQ(error_code_name(ErrorCode::payload_too_large), "payload_too_large");
}

}  // namespace
}  // namespace ca
