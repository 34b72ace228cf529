#include "http/health_endpoints.hpp"

#include "api/instance_messages.hpp"
#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

void register_health_endpoints(Router& router, const authority::ReadinessMonitor& readiness) {
  router.add(
      bhttp::verb::get, "/healthz",
      [](const RequestContext&, const Responder& respond) {
        respond(json_response(bhttp::status::ok, api::encode_message(api::LivenessAnswer{})));
      },
      Exposure::also_plain_http, Runs::on_io_thread);

  router.add(
      bhttp::verb::get, "/readyz",
      [&readiness](const RequestContext&, const Responder& respond) {
        auto report = readiness.report();
        api::ReadinessAnswer answer{report.ready, store::to_generalized_time(report.checked_at), {}};
        for (const auto& c : report.checks) answer.checks.push_back({c.name, c.ok, c.detail, c.seconds, c.advisory});
        const json::value body = api::encode_message(answer);
        auto res = json_response(report.ready ? bhttp::status::ok : bhttp::status::service_unavailable, body);
        res.set(bhttp::field::cache_control, "no-store");
        respond(std::move(res));
      },
      Exposure::also_plain_http, Runs::on_io_thread);
}

}  // namespace ca::http
