#include "http/router.hpp"

#include <optional>
#include <stdexcept>

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ca::http {
namespace {

namespace bhttp = beast::http;
using bhttp::verb;

RequestContext context(verb method, const std::string& target, bool tls = true) {
  RequestContext ctx;
  ctx.request = std::make_shared<Request>(method, target, 11);
  ctx.path = target.substr(0, target.find('?'));
  ctx.tls = tls;
  return ctx;
}

// Dispatches and returns what the router (or the handler) answered.
Response dispatch(const Router& router, verb method, const std::string& target, bool tls = true) {
  std::optional<Response> answer;
  router.dispatch(context(method, target, tls), [&answer](Response res) { answer = std::move(res); });
  EXPECT_TRUE(answer) << "no answer for " << target;
  return answer ? std::move(*answer) : Response{};
}

// A handler that answers with its name and the path parameters it was given.
Handler named(std::string name) {
  return [name](RequestContext ctx, Responder respond) {
    boost::json::object params;
    for (const auto& [key, value] : ctx.path_params) params[key] = value;
    Response res{bhttp::status::ok, 11};
    res.body() = boost::json::serialize(boost::json::object{{"route", name}, {"params", params}});
    respond(std::move(res));
  };
}

boost::json::object body_of(const Response& res) { return boost::json::parse(res.body()).as_object(); }
std::string text(const Response& res, const char* key) { return std::string(body_of(res).at(key).as_string()); }
std::string route_of(const Response& res) { return text(res, "route"); }

TEST(Router, ExactRoute) {
  Router router;
  router.add(verb::get, "/ca/rest/info", named("info"));
  router.add(verb::get, "/ca/rest/profiles", named("profiles"));
  auto res = dispatch(router, verb::get, "/ca/rest/profiles");
  EXPECT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(route_of(res), "profiles");
}

TEST(Router, ParametersAreExtractedAndDecoded) {
  Router router;
  router.add(verb::get, "/ca/rest/agents/{group}/members/{name}", named("member"));
  auto res = dispatch(router, verb::get, "/ca/rest/agents/admins/members/alice%20smith");
  ASSERT_EQ(res.result(), bhttp::status::ok);
  EXPECT_EQ(body_of(res).at("params"), boost::json::value(boost::json::object{{"group", "admins"}, {"name", "alice smith"}}));
}

TEST(Router, ExactSegmentBeatsParameterWhateverTheOrder) {
  for (bool literal_first : {true, false}) {
    SCOPED_TRACE(literal_first ? "literal registered first" : "parameter registered first");
    Router router;
    if (literal_first) router.add(verb::get, "/certs/revoked", named("revoked"));
    router.add(verb::get, "/certs/{serial}", named("by-serial"));
    if (!literal_first) router.add(verb::get, "/certs/revoked", named("revoked"));
    EXPECT_EQ(route_of(dispatch(router, verb::get, "/certs/revoked")), "revoked");
    EXPECT_EQ(route_of(dispatch(router, verb::get, "/certs/0x1f")), "by-serial");
  }
}

TEST(Router, LeftmostExactSegmentDecides) {
  Router router;
  router.add(verb::get, "/{a}/x", named("param-first"));
  router.add(verb::get, "/x/{b}", named("literal-first"));
  EXPECT_EQ(route_of(dispatch(router, verb::get, "/x/x")), "literal-first");
}

TEST(Router, MethodMatchBeatsSpecificity) {
  Router router;
  router.add(verb::get, "/certs/revoked", named("revoked"));
  router.add(verb::post, "/certs/{serial}", named("update"));
  EXPECT_EQ(route_of(dispatch(router, verb::post, "/certs/revoked")), "update");
}

TEST(Router, QueryAndRequestReachTheHandler) {
  Router router;
  std::optional<RequestContext> seen;
  router.add(verb::get, "/certs", [&seen](RequestContext ctx, Responder respond) {
    seen = ctx;
    respond(Response{bhttp::status::ok, 11});
  });
  auto ctx = context(verb::get, "/certs?size=5");
  ctx.query = {{"size", "5"}};
  router.dispatch(ctx, [](Response) {});
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->query.at("size"), "5");
  EXPECT_EQ(seen->request->target(), "/certs?size=5");
}

TEST(Router, UnknownPathIsNotFoundJson) {
  Router router;
  router.add(verb::get, "/certs/{serial}", named("by-serial"));
  for (const char* path : {"/nothing", "/certs", "/certs/", "/certs/1/2", "/certs/1/"}) {
    SCOPED_TRACE(path);
    auto res = dispatch(router, verb::get, path);
    EXPECT_EQ(res.result(), bhttp::status::not_found);
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_EQ(text(res, "error"), "not_found");
  }
}

TEST(Router, KnownPathWithOtherMethodIsMethodNotAllowed) {
  Router router;
  router.add(verb::post, "/certs/{serial}", named("update"));
  router.add(verb::get, "/certs/{serial}", named("get"));
  router.add(verb::get, "/certs/{serial}/pem", named("pem"));
  auto res = dispatch(router, verb::delete_, "/certs/12");
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, POST");
  EXPECT_EQ(text(res, "error"), "method_not_allowed");
}

TEST(Router, MalformedEscapeInParameterIsBadRequest) {
  Router router;
  router.add(verb::get, "/certs/{serial}", named("by-serial"));
  auto res = dispatch(router, verb::get, "/certs/%zz");
  EXPECT_EQ(res.result(), bhttp::status::bad_request);
  EXPECT_EQ(text(res, "error"), "bad_request");
}

TEST(Router, RejectsMalformedAndDuplicateRoutes) {
  Router router;
  router.add(verb::get, "/certs/{serial}", named("a"));
  for (const char* pattern : {"certs", "/certs/{a}/{a}", "/certs/{", "/certs/x{y}", "/certs/{}"}) {
    SCOPED_TRACE(pattern);
    EXPECT_THROW(router.add(verb::get, pattern, named("bad")), std::invalid_argument);
  }
  EXPECT_THROW(router.add(verb::get, "/certs/{id}", named("dup")), std::invalid_argument);
  EXPECT_THROW(router.add(verb::get, "/x", Handler{}), std::invalid_argument);
  EXPECT_NO_THROW(router.add(verb::post, "/certs/{id}", named("other method")));
  EXPECT_NO_THROW(router.add(verb::get, "/certs/revoked", named("more specific")));
}

TEST(Router, PlainHttpSeesOnlyTheRoutesExposedThere) {
  Router router;
  router.add(verb::get, "/crl/{name}", named("crl"), Exposure::also_plain_http);
  router.add(verb::post, "/ca/rest/certrequests", named("enroll"));
  router.add(verb::get, "/ca/rest/certrequests/{id}", named("request"));
  EXPECT_EQ(route_of(dispatch(router, verb::get, "/crl/MasterCRL.crl", false)), "crl");
  EXPECT_EQ(route_of(dispatch(router, verb::get, "/crl/MasterCRL.crl", true)), "crl");
  // Enrollment over HTTPS only: plain HTTP answers 404 (not 405: the route is not there at all).
  EXPECT_EQ(dispatch(router, verb::post, "/ca/rest/certrequests", false).result(), bhttp::status::not_found);
  EXPECT_EQ(dispatch(router, verb::get, "/ca/rest/certrequests/5", false).result(), bhttp::status::not_found);
  EXPECT_EQ(dispatch(router, verb::post, "/crl/MasterCRL.crl", false).result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(route_of(dispatch(router, verb::post, "/ca/rest/certrequests", true)), "enroll");
}

}  // namespace
}  // namespace ca::http
