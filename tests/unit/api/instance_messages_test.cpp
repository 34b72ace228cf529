// What an instance says about itself: /healthz, /readyz and the part of /ca/rest/info ca-clone reads.
#include "api/instance_messages.hpp"

#include "api/error_answer.hpp"

#include <string>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace ca::api {
namespace {

template <typename T>
std::string wire(const T& message) {
  return boost::json::serialize(encode_message(message));
}

ReadinessAnswer sample_readiness() {
  return {false, "20261207120000Z",
          {{"directory", true, "", 0.25, false}, {"crl_epochs", false, "two epochs publishing", 0, true}}};
}

TEST(InstanceMessagesTest, LivenessIsAlive) {
  EXPECT_EQ(wire(LivenessAnswer{}), R"({"status":"alive"})");
  auto back = parse_message<LivenessAnswer>(R"({"status":"alive"})");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, "alive");
  auto missing = parse_message<LivenessAnswer>("{}");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "field 'status' is required");
}

TEST(InstanceMessagesTest, ReadinessRoundTripsWithAdvisoryOnlyWhenSet) {
  const auto report = sample_readiness();
  EXPECT_EQ(wire(report), R"({"ready":false,"checked_at":"20261207120000Z","checks":[)"
                          R"({"name":"directory","ok":true,"detail":"","seconds":2.5E-1},)"
                          R"({"name":"crl_epochs","ok":false,"detail":"two epochs publishing","seconds":0E0,"advisory":true}]})");
  auto back = parse_message<ReadinessAnswer>(wire(report));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(wire(*back), wire(report));
  ASSERT_EQ(back->checks.size(), 2u);
  EXPECT_FALSE(back->checks[0].advisory);
  EXPECT_TRUE(back->checks[1].advisory);
  EXPECT_DOUBLE_EQ(back->checks[0].seconds, 0.25);
  // Whole seconds written as integers read as numbers too.
  auto whole = parse_message<ReadinessAnswer>(R"({"ready":true,"checked_at":"x","checks":[{"name":"n","ok":true,"detail":"","seconds":2}]})");
  ASSERT_TRUE(whole) << whole.error().message;
  EXPECT_DOUBLE_EQ(whole->checks[0].seconds, 2.0);
}

TEST(InstanceMessagesTest, ReadinessRefusalsNameTheCheckAndTheField) {
  auto json = encode_message(sample_readiness());
  json.as_object()["checks"].as_array()[1].as_object()["ok"] = "false";
  auto wrong = decode_message<ReadinessAnswer>(json);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "field 'checks[1].ok' must be true or false");
  json.as_object()["checks"].as_array()[0].as_object()["seconds"] = "fast";
  auto seconds = decode_message<ReadinessAnswer>(json);
  ASSERT_FALSE(seconds);
  EXPECT_EQ(seconds.error().message, "field 'checks[0].seconds' must be a number");
  json.as_object().erase("ready");
  auto missing = decode_message<ReadinessAnswer>(json);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "field 'ready' is required");
  auto garbage = parse_message<ReadinessAnswer>(R"({"ready":true,"checked_at":"x","checks":[]}garbage)");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, ErrorCode::bad_request);
}

TEST(InstanceMessagesTest, CaInfoNeedsTheCertificateChainAndIgnoresTheRest) {
  auto info = parse_message<CaInfoAnswer>(R"({"subject":"CN=CA","certificate_chain":"-----BEGIN","profiles":[]})");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->certificate_chain, "-----BEGIN");
  auto missing = parse_message<CaInfoAnswer>(R"({"subject":"CN=CA"})");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "field 'certificate_chain' is required");
}

TEST(InstanceMessagesTest, ErrorAnswerIsErrorThenMessage) {
  EXPECT_EQ(wire(ErrorAnswer{"conflict", "instance 'c1' is already registered"}),
            R"({"error":"conflict","message":"instance 'c1' is already registered"})");
  auto back = parse_message<ErrorAnswer>(R"({"error":"forbidden","message":"no"})");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->error, "forbidden");
  EXPECT_EQ(back->message, "no");
  auto wrong = parse_message<ErrorAnswer>(R"({"error":"forbidden","message":3})");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "field 'message' must be a string");
}

}  // namespace
}  // namespace ca::api
