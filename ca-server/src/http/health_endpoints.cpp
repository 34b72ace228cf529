#include "http/health_endpoints.hpp"

#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

void register_health_endpoints(Router& router, const authority::ReadinessMonitor& readiness) {
  router.add(
      bhttp::verb::get, "/healthz",
      [](RequestContext, Responder respond) { respond(json_response(bhttp::status::ok, {{"status", "alive"}})); },
      Exposure::also_plain_http, Runs::on_io_thread);

  router.add(
      bhttp::verb::get, "/readyz",
      [&readiness](RequestContext, Responder respond) {
        auto report = readiness.report();
        json::array checks;
        for (const auto& c : report.checks) {
          json::object o;
          o["name"] = c.name;
          o["ok"] = c.ok;
          o["detail"] = c.detail;
          o["seconds"] = c.seconds;
          if (c.advisory) o["advisory"] = true;
          checks.push_back(std::move(o));
        }
        json::object body;
        body["ready"] = report.ready;
        body["checked_at"] = store::to_generalized_time(report.checked_at);
        body["checks"] = std::move(checks);
        auto res = json_response(report.ready ? bhttp::status::ok : bhttp::status::service_unavailable, body);
        res.set(bhttp::field::cache_control, "no-store");
        respond(std::move(res));
      },
      Exposure::also_plain_http, Runs::on_io_thread);
}

}  // namespace ca::http
