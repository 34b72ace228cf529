#include "http/metrics_endpoints.hpp"

#include <array>
#include <string>

#include <boost/beast/http/field.hpp>

#include "http/responses.hpp"

namespace ca::http {

namespace bhttp = boost::beast::http;

void register_metrics_endpoint(Router& router, const metrics::Registry& registry) {
  router.add(
      bhttp::verb::get, "/metrics",
      [&registry](const RequestContext&, const Responder& respond) {
        auto res = bytes_response(bhttp::status::ok, registry.exposition(), metrics::kContentType);
        res.set(bhttp::field::cache_control, "no-store");
        respond(std::move(res));
      },
      Exposure::also_plain_http);
}

bool is_enrollment_route(std::string_view method, std::string_view route) {
  if (method != "POST" && method != "GET") return false;
  if (route == "/ca/rest/certrequests") return method == "POST";
  static constexpr std::array<std::string_view, 5> kEnrollmentOperations{
      "/ca/ee/ca/profileSubmit", "/ca/ee/ca/profileSubmitSSLClient", "/simpleenroll", "/simplereenroll",
      "/serverkeygen"};
  for (auto operation : kEnrollmentOperations) {
    if (!route.ends_with(operation)) continue;
    // Dogtag's forms accept GET as well; EST enrollment is POST only.
    return operation.starts_with("/ca/ee/") ? route == operation : method == "POST";
  }
  return false;
}

HttpMetrics::HttpMetrics(metrics::Registry& registry)
    : requests_(registry.counter("ca_http_requests_total",
                                 "HTTP requests answered, by route pattern, method and status.",
                                 {"endpoint", "method", "status"})),
      duration_(registry.histogram("ca_http_request_duration_seconds",
                                   "Time from reading a request to writing its response, by route pattern.",
                                   metrics::latency_buckets(), {"endpoint"})),
      enrollment_duration_(registry.histogram(
          "ca_enrollment_duration_seconds",
          "Time to answer an enrollment (REST certrequests, Dogtag profileSubmit, EST), by route pattern.",
          metrics::latency_buckets(), {"endpoint"})) {}

namespace {

// The method as a label value: any token a client sends is a method to the parser, so only the
// standard ones are named (bounded cardinality).
std::string method_label(std::string_view method) {
  static constexpr std::array<std::string_view, 7> kKnown{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
  for (auto known : kKnown)
    if (method == known) return std::string(known);
  return "other";
}

}  // namespace

void HttpMetrics::observe(const CompletedRequest& r) {
  const double seconds = std::chrono::duration<double>(r.latency).count();
  requests_.add({r.route, method_label(r.method), std::to_string(r.status)});
  duration_.observe({r.route}, seconds);
  if (is_enrollment_route(r.method, r.route)) enrollment_duration_.observe({r.route}, seconds);
}

}  // namespace ca::http
