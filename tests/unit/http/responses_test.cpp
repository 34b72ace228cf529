#include "http/responses.hpp"

#include <boost/beast/http/field.hpp>
#include <gtest/gtest.h>

namespace ca::http {
namespace {

namespace bhttp = beast::http;
using bhttp::status;

boost::json::object body_of(const Response& res) { return boost::json::parse(res.body()).as_object(); }
std::string text(const Response& res, const char* key) { return std::string(body_of(res).at(key).as_string()); }

struct MappingCase {
  ErrorCode code;
  status expected;
};

TEST(ErrorResponse, StatusAndBodyForEveryCode) {
  const MappingCase cases[] = {
      {ErrorCode::bad_request, status::bad_request},
      {ErrorCode::policy_violation, status::bad_request},
      {ErrorCode::not_found, status::not_found},
      {ErrorCode::conflict, status::conflict},
      {ErrorCode::payload_too_large, status::payload_too_large},
      {ErrorCode::unsupported_media, status::unsupported_media_type},
      {ErrorCode::unauthorized, status::unauthorized},
      {ErrorCode::forbidden, status::forbidden},
      {ErrorCode::unavailable, status::service_unavailable},
      {ErrorCode::config, status::internal_server_error},
      {ErrorCode::io, status::internal_server_error},
      {ErrorCode::crypto, status::internal_server_error},
      {ErrorCode::directory, status::internal_server_error},
      {ErrorCode::internal, status::internal_server_error},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(error_code_name(c.code)));
    EXPECT_EQ(status_for(c.code), c.expected);
    auto res = error_response(Error{c.code, "what went wrong"});
    EXPECT_EQ(res.result(), c.expected);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
    auto body = body_of(res);
    EXPECT_EQ(text(res, "error"), error_code_name(c.code));
    EXPECT_EQ(body.size(), 2u);
    EXPECT_EQ(res.count(bhttp::field::retry_after), c.code == ErrorCode::unavailable ? 1u : 0u);
  }
}

TEST(ErrorResponse, ClientErrorsCarryTheMessage) {
  auto res = error_response(Error::policy("key type rsa_1024 is not allowed by profile caServerCert"));
  EXPECT_EQ(text(res, "error"), "policy_violation");
  EXPECT_EQ(text(res, "message"), "key type rsa_1024 is not allowed by profile caServerCert");
}

TEST(ErrorResponse, UnavailableAsksToRetryInFiveSeconds) {
  auto res = error_response(Error::unavailable("directory down"));
  EXPECT_EQ(res.result(), status::service_unavailable);
  EXPECT_EQ(res[bhttp::field::retry_after], "5");
  EXPECT_EQ(text(res, "message"), "directory down");
}

TEST(ErrorResponse, ServerErrorsDoNotLeakDetails) {
  auto res = error_response(Error::directory("ldap_modify uid=secret,o=pki-ca: Server is unwilling"));
  EXPECT_EQ(res.result(), status::internal_server_error);
  EXPECT_EQ(text(res, "error"), "directory");
  EXPECT_EQ(res.body().find("secret"), std::string::npos);
}

TEST(ErrorResponse, KeepsVersionAndKeepAlive) {
  auto res = error_response(Error::not_found("no such certificate"), 10, false);
  EXPECT_EQ(res.version(), 10u);
  EXPECT_FALSE(res.keep_alive());
}

TEST(JsonResponse, SerialisesTheValue) {
  auto res = json_response(status::created, {{"serial", "0x1f"}, {"ok", true}});
  EXPECT_EQ(res.result(), status::created);
  EXPECT_EQ(res[bhttp::field::content_type], "application/json");
  EXPECT_EQ(res[bhttp::field::content_length], std::to_string(res.body().size()));
  EXPECT_EQ(body_of(res), (boost::json::object{{"serial", "0x1f"}, {"ok", true}}));
  EXPECT_TRUE(res.keep_alive());
}

TEST(BytesResponse, CarriesBinaryBodies) {
  const std::string der("\x30\x82\x00\x00\x01", 5);
  auto res = bytes_response(status::ok, der, "application/pkix-cert");
  EXPECT_EQ(res[bhttp::field::content_type], "application/pkix-cert");
  EXPECT_EQ(res[bhttp::field::content_length], "5");
  EXPECT_EQ(res.body(), der);
}

struct ParseCase {
  const char* name;
  const char* content_type;  // nullptr: no header
  const char* body;
  std::optional<ErrorCode> error;
  const char* message_part = "";
};

TEST(ParseJsonObject, Cases) {
  const ParseCase cases[] = {
      {"object", "application/json", R"({"profile_id":"caServerCert"})", std::nullopt},
      {"charset parameter", "application/json; charset=utf-8", "{}", std::nullopt},
      {"case-insensitive type", "Application/JSON", "{}", std::nullopt},
      {"other type", "text/plain", "{}", ErrorCode::unsupported_media, "text/plain"},
      {"json suffix is not json", "application/jsonp", "{}", ErrorCode::unsupported_media},
      {"no content type", nullptr, "{}", ErrorCode::unsupported_media},
      {"syntax error", "application/json", R"({"a": 1, x})", ErrorCode::bad_request, "offset 9"},
      {"truncated", "application/json", R"({"a":)", ErrorCode::bad_request, "offset 5"},
      {"empty", "application/json", "", ErrorCode::bad_request, "offset 0"},
      {"trailing data", "application/json", R"({"a":1} x)", ErrorCode::bad_request},
      {"array", "application/json", "[1,2]", ErrorCode::bad_request, "object"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Request req{bhttp::verb::post, "/x", 11};
    if (c.content_type) req.set(bhttp::field::content_type, c.content_type);
    req.body() = c.body;
    auto parsed = parse_json_object(req);
    if (!c.error) {
      ASSERT_TRUE(parsed) << parsed.error().message;
      continue;
    }
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().code, *c.error) << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos) << parsed.error().message;
    EXPECT_EQ(error_response(parsed.error()).result(),
              *c.error == ErrorCode::bad_request ? status::bad_request : status::unsupported_media_type);
  }
}

TEST(ParseJsonObject, ReturnsTheObject) {
  Request req{bhttp::verb::post, "/x", 11};
  req.set(bhttp::field::content_type, "application/json");
  req.body() = R"({"profile_id":"caServerCert","csr":"-----BEGIN..."})";
  auto parsed = parse_json_object(req);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->at("profile_id").as_string(), "caServerCert");
}

}  // namespace
}  // namespace ca::http
