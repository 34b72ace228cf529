#include "http/kra_endpoints.hpp"

#include <fmt/format.h>

#include "authority/issuance/serial_text.hpp"
#include "http/agent_handlers.hpp"
#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

json::object recovery_json(const store::RecoveryRecord& r) {
  json::object o;
  o["recovery_id"] = r.id;
  o["status"] = r.state;
  o["key_id"] = r.key_id;
  o["serial"] = authority::display_hex(r.serial_hex);
  o["requested_by"] = r.requester_name;
  o["approvals_required"] = r.approvals_required;
  o["approvals"] = r.approval_count;
  o["result"] = r.result;
  o["requested_on"] = r.instance_id;
  o["created"] = store::to_generalized_time(r.created_at);
  o["modified"] = store::to_generalized_time(r.modified_at);
  return o;
}

Result<json::object> body_object(const RequestContext& ctx, std::initializer_list<std::string_view> allowed) {
  if (ctx.request->body().empty()) return json::object{};
  CA_TRY(auto body, parse_json_object(*ctx.request));
  for (const auto& [key, value] : body)
    if (std::find(allowed.begin(), allowed.end(), std::string_view(key)) == allowed.end())
      return fail(Error::bad_request(fmt::format("unknown field '{}'", std::string(key).substr(0, 64))));
  return body;
}

// Agents looking at and deciding on recoveries: the list, one recovery, approval, rejection.
void register_recovery_decisions(Router& router, authority::CertificateAuthority& ca, authority::KeyArchive& archive) {
  router.add(
      bhttp::verb::get, "/kra/rest/agent/recoveries",
      for_agents_returning(
          ca.agents(), [&archive](const RequestContext& ctx, const authority::AgentIdentity&) -> Result<Response> {
            std::string state;
            if (auto it = ctx.query.find("status"); it != ctx.query.end()) state = it->second;
            if (!state.empty() && state != "pending" && state != "approved" && state != "retrieved" &&
                state != "rejected")
              return fail(Error::bad_request("status: expected pending, approved, retrieved or rejected"));
            CA_TRY(auto list, archive.list(state));
            json::array entries;
            for (const auto& r : list) entries.push_back(recovery_json(r));
            json::object o;
            o["total"] = entries.size();
            o["entries"] = std::move(entries);
            return json_response(bhttp::status::ok, o);
          }));

  router.add(
      bhttp::verb::get, "/kra/rest/agent/recoveries/{id}",
      for_agents_returning(ca.agents(),
                           [&archive](const RequestContext& ctx, const authority::AgentIdentity&) -> Result<Response> {
                             CA_TRY(auto r, archive.find(ctx.path_params.at("id")));
                             return json_response(bhttp::status::ok, recovery_json(r));
                           }));

  router.add(bhttp::verb::post, "/kra/rest/agent/recoveries/{id}/approve",
             for_agents_returning(
                 ca.agents(),
                 [&archive](const RequestContext& ctx, const authority::AgentIdentity& agent) -> Result<Response> {
                   CA_TRY(auto r, archive.approve(ctx.path_params.at("id"), agent));
                   return json_response(bhttp::status::ok, recovery_json(r));
                 }));

  router.add(bhttp::verb::post, "/kra/rest/agent/recoveries/{id}/reject",
             for_agents_returning(
                 ca.agents(),
                 [&archive](const RequestContext& ctx, const authority::AgentIdentity& agent) -> Result<Response> {
                   CA_TRY(auto body, body_object(ctx, {"reason"}));
                   std::string reason;
                   if (auto* v = body.if_contains("reason"); v && v->is_string()) reason = std::string(v->as_string());
                   CA_TRY(auto r, archive.reject(ctx.path_params.at("id"), agent, reason));
                   return json_response(bhttp::status::ok, recovery_json(r));
                 }));
}

// POST .../retrieve: the key, once, for the agent who asked.
void register_recovery_retrieval(Router& router, authority::CertificateAuthority& ca, authority::KeyArchive& archive) {
  // POST .../retrieve {"password"}: the PKCS#12 (application/x-pkcs12), once, for the agent who asked.
  router.add(bhttp::verb::post, "/kra/rest/agent/recoveries/{id}/retrieve",
             for_agents_returning(
                 ca.agents(),
                 [&archive](const RequestContext& ctx, const authority::AgentIdentity& agent) -> Result<Response> {
                   CA_TRY(auto body, body_object(ctx, {"password"}));
                   CA_TRY(std::string password, required_string(body, "password"));
                   CA_TRY(auto p12, archive.retrieve(ctx.path_params.at("id"), agent, password, ctx.received_at));
                   auto res =
                       bytes_response(bhttp::status::ok, std::string(p12.begin(), p12.end()), "application/x-pkcs12");
                   res.set(bhttp::field::content_disposition, "attachment; filename=\"recovered.p12\"");
                   res.set(bhttp::field::cache_control, "no-store");
                   return res;
                 }));
}

}  // namespace

void register_kra_endpoints(Router& router, authority::CertificateAuthority& ca, authority::KeyArchive& archive) {
  // The certificate clients encrypt their keys to (`openssl cms -encrypt -recip`): public.
  router.add(bhttp::verb::get, "/kra/rest/transport-cert", [&archive](const RequestContext&, const Responder& respond) {
    if (!archive.enabled())
      return respond(error_response(Error::unavailable("key archival is off on this instance (no transport key)")));
    respond(bytes_response(bhttp::status::ok, archive.transport_certificate_pem(), "application/x-pem-file"));
  });

  // POST /kra/rest/agent/recoveries {"serial"}: ask for the recovery of the key of a certificate.
  router.add(bhttp::verb::post, "/kra/rest/agent/recoveries",
             for_agents_returning(
                 ca.agents(),
                 [&ca, &archive](const RequestContext& ctx, const authority::AgentIdentity& agent) -> Result<Response> {
                   CA_TRY(auto body, body_object(ctx, {"serial"}));
                   CA_TRY(std::string serial_text, required_string(body, "serial"));
                   CA_TRY(std::string serial, authority::parse_number_text(serial_text, "serial number"));
                   int approvals = 1;
                   if (auto cert = ca.find_certificate(serial)) {
                     for (const auto& p : ca.profiles())
                       if (p.id == cert->profile_id) approvals = p.archival.recovery_approvals;
                   }
                   CA_TRY(auto r, archive.request_recovery(serial, agent, approvals));
                   auto res = json_response(bhttp::status::created, recovery_json(r));
                   res.set(bhttp::field::location, "/kra/rest/agent/recoveries/" + r.id);
                   return res;
                 }));

  register_recovery_decisions(router, ca, archive);
  register_recovery_retrieval(router, ca, archive);
}

}  // namespace ca::http
