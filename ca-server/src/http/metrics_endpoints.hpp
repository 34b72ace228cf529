#pragma once
// GET /metrics (Prometheus text format 0.0.4) on the HTTPS and plain-HTTP ports, and the HTTP
// metrics the server feeds for every answered request:
//   ca_http_requests_total{endpoint,method,status}      counter
//   ca_http_request_duration_seconds{endpoint}           histogram
//   ca_enrollment_duration_seconds{endpoint}             histogram, enrollment routes only
// `endpoint` is the route pattern the router matched ("unmatched" when none did): the number of
// series is bounded by the routes, whatever paths clients send.
#include <string_view>

#include "core/metrics.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_metrics_endpoint(Router& router, const metrics::Registry& registry);

// Whether a route submits enrollments: the REST certrequests, Dogtag's profileSubmit and the EST
// simpleenroll, simplereenroll and serverkeygen (under every EST base path).
bool is_enrollment_route(std::string_view method, std::string_view route);

class HttpMetrics {
 public:
  explicit HttpMetrics(metrics::Registry& registry);
  // A RequestObserver (ServerOptions::observers).
  void observe(const CompletedRequest& request);

 private:
  metrics::Counter& requests_;
  metrics::Histogram& duration_;
  metrics::Histogram& enrollment_duration_;
};

}  // namespace ca::http
