#include "http/ca_endpoints.hpp"

#include <charconv>
#include <chrono>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "authority/issuance/serial_text.hpp"
#include "crypto/encoding.hpp"
#include "http/agent_handlers.hpp"
#include "http/peer.hpp"
#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using authority::display_hex;

namespace {

std::string to_pem(const std::vector<uint8_t>& der, const char* label) {
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der.data(), static_cast<int>(der.size()));
  b64.resize(static_cast<std::size_t>(n));
  std::string out = fmt::format("-----BEGIN {}-----\n", label);
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += fmt::format("-----END {}-----\n", label);
  return out;
}

json::object certificate_json(const store::CertificateRecord& c, bool with_pem) {
  json::object o;
  o["serial"] = display_hex(c.serial_hex);
  o["status"] = c.status;
  o["subject"] = c.subject_dn;
  o["issuer"] = c.issuer_dn;
  o["not_before"] = store::to_iso8601(c.not_before);
  o["not_after"] = store::to_iso8601(c.not_after);
  o["issued_at"] = store::to_iso8601(c.issued_at);
  o["profile_id"] = c.profile_id;
  if (!c.request_id_hex.empty()) o["request_id"] = display_hex(c.request_id_hex);
  o["issued_by"] = c.issued_by;
  o["replica_id"] = c.replica_id;
  if (c.revoked_on) {
    o["revoked_on"] = store::to_iso8601(*c.revoked_on);
    o["revocation_reason"] = c.revocation_reason;
    o["revoked_by"] = c.revoked_by;
  }
  if (with_pem) o["certificate"] = to_pem(c.der, "CERTIFICATE");
  return o;
}

Result<std::size_t> query_number(const RequestContext& ctx, const std::string& name, std::size_t fallback,
                                 std::size_t min, std::size_t max) {
  auto it = ctx.query.find(name);
  if (it == ctx.query.end()) return fallback;
  std::size_t v = 0;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < min || v > max)
    return fail(Error::bad_request(
        fmt::format("query parameter {}: expected a number from {} to {}, got '{}'", name, min, max, s.substr(0, 32))));
  return v;
}

std::string query_text(const RequestContext& ctx, const std::string& name) {
  auto it = ctx.query.find(name);
  return it == ctx.query.end() ? std::string() : it->second;
}

Result<std::string> optional_string(const json::object& body, std::string_view name) {
  auto* v = body.if_contains(name);
  if (!v || v->is_null()) return std::string();
  if (!v->is_string()) return fail(Error::bad_request(fmt::format("field '{}' must be a string", name)));
  return std::string(v->as_string());
}

Result<std::optional<std::vector<std::string>>> optional_strings(const json::object& body, std::string_view name) {
  auto* v = body.if_contains(name);
  if (!v || v->is_null()) return std::optional<std::vector<std::string>>{};
  if (!v->is_array()) return fail(Error::bad_request(fmt::format("field '{}' must be an array of strings", name)));
  std::vector<std::string> out;
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) return fail(Error::bad_request(fmt::format("field '{}' must be an array of strings", name)));
    out.emplace_back(item.as_string());
  }
  if (out.size() > 100) return fail(Error::bad_request(fmt::format("field '{}' has more than 100 entries", name)));
  return std::optional<std::vector<std::string>>(std::move(out));
}

// One page of a listing; `truncated`: the search stopped at its limit, so total is a lower bound.
json::object page_json(json::array entries, std::size_t total, bool truncated, std::size_t start, std::size_t size) {
  json::object o;
  o["total"] = total;
  if (truncated) o["total_is_lower_bound"] = true;
  o["start"] = start;
  o["size"] = size;
  o["entries"] = std::move(entries);
  return o;
}

json::array strings_json(const std::vector<std::string>& values) {
  json::array a;
  for (const auto& v : values) a.push_back(json::string(v));
  return a;
}

json::object request_json(const store::RequestRecord& r, const std::string& certificate_pem) {
  json::object o;
  o["request_id"] = display_hex(r.id_hex);
  o["type"] = r.type;
  o["status"] = r.state;
  o["profile_id"] = r.profile_id;
  if (!r.serial_hex.empty()) o["serial"] = display_hex(r.serial_hex);
  o["subject"] = r.subject_dn;
  o["created"] = store::to_iso8601(r.created_at);
  o["modified"] = store::to_iso8601(r.modified_at);
  o["result"] = r.result;
  o["received_by"] = r.instance_id;
  if (!r.requester.empty()) o["requester"] = r.requester;
  if (!r.approved_by.empty()) o["approved_by"] = r.approved_by;
  if (!r.csr_der.empty()) {
    if (r.type == "renewal")
      o["renews"] = to_pem(r.csr_der, "CERTIFICATE");  // a renewal holds the old certificate
    else
      o["csr"] = to_pem(r.csr_der, "CERTIFICATE REQUEST");
  }
  if (!certificate_pem.empty()) o["certificate"] = certificate_pem;
  return o;
}

// The answer to a submission or an approval: 201 with the certificate, or 202 while it waits.
Response enrollment_response(const authority::EnrollmentResult& r, int retry_after_seconds) {
  json::object o;
  o["request_id"] = display_hex(r.request_id_hex);
  o["status"] = r.request_status;
  o["profile_id"] = r.profile_id;
  o["subject"] = r.subject_dn;
  if (!r.authenticated_by.empty()) o["authenticated_by"] = r.authenticated_by;
  if (!r.request_secret.empty()) o["request_secret"] = r.request_secret;
  if (!r.serial_hex.empty()) o["serial"] = display_hex(r.serial_hex);
  if (!r.certificate_pem.empty()) o["certificate"] = r.certificate_pem;
  if (!r.archived_key_id.empty()) o["archived_key_id"] = r.archived_key_id;
  if (!r.pkcs12.empty()) o["pkcs12"] = crypto::base64_encode(r.pkcs12);  // the key: only in this answer
  const bool complete = r.request_status == "complete";
  auto res = json_response(complete ? bhttp::status::created : bhttp::status::accepted, o);
  res.set(bhttp::field::location, "/ca/rest/certrequests/" + display_hex(r.request_id_hex));
  if (!complete) res.set(bhttp::field::retry_after, std::to_string(retry_after_seconds));
  return res;
}

// The fields of POST /ca/rest/certrequests: a CSR, or (server_keygen) the subject and names of a
// key the CA makes.
Status fill_enrollment_input(const json::object& body, authority::EnrollmentInput& input) {
  CA_TRY(input.profile_id, required_string(body, "profile_id"));
  if (auto* v = body.if_contains("server_keygen")) {
    if (!v->is_bool()) return fail(Error::bad_request("field 'server_keygen' must be true or false"));
    input.server_keygen = v->as_bool();
  }
  if (input.server_keygen) {
    // The CA makes the key: the request names the subject and the names instead of a CSR.
    if (body.contains("csr"))
      return fail(Error::bad_request("server_keygen makes the key and the request: send no 'csr'"));
    CA_TRY(input.subject_dn, required_string(body, "subject"));
    CA_TRY(auto dns, optional_strings(body, "dns_names"));
    CA_TRY(auto ips, optional_strings(body, "ip_addresses"));
    CA_TRY(auto emails, optional_strings(body, "emails"));
    input.dns_names = dns.value_or(std::vector<std::string>{});
    input.ip_addresses = ips.value_or(std::vector<std::string>{});
    input.emails = emails.value_or(std::vector<std::string>{});
    CA_TRY(input.pkcs12_password, required_string(body, "pkcs12_password"));
  } else {
    CA_TRY(input.csr_pem, required_string(body, "csr"));
    CA_TRY(input.key_envelope, optional_string(body, "key_envelope"));
  }
  CA_TRY(input.enrollment_code, optional_string(body, "enrollment_code"));
  return ok();
}

// The stored answer of an earlier request with the same Idempotency-Key, as it was sent.
Response replayed_response(const authority::KeyedAnswer& answer, RequestAnnotations& annotations) {
  Response res{static_cast<bhttp::status>(answer.status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.set("Idempotent-Replayed", "true");
  res.body() = answer.body;
  boost::system::error_code parse_error;
  auto stored = json::parse(answer.body, parse_error);
  if (!parse_error && stored.is_object())
    if (auto* serial = stored.as_object().if_contains("serial"); serial && serial->is_string()) {
      std::string_view text = serial->as_string();
      annotations.set_serial(std::string(text.starts_with("0x") ? text.substr(2) : text));
    }
  return res;
}

// Idempotency-Key: the same request sent again (to any instance) gets the first answer; the
// authority decides (authority/issuance/idempotency), this renders.
void submit_keyed_enrollment(authority::CertificateAuthority& ca, authority::IdempotencyKeys& keys,
                             const RequestContext& ctx, authority::EnrollmentInput input, const Responder& respond) {
  if (input.server_keygen)
    return respond(error_response(Error::bad_request(
        "Idempotency-Key cannot be used with server_keygen: the generated key is given out once, never stored")));
  const int retry = ca.config().ca.retry_after_seconds;
  // The fresh answer, kept whole (headers too) for the client; its status and body are stored.
  auto fresh = std::make_shared<Response>();
  auto work = [&ca, input = std::move(input), fresh, retry,
               annotations = ctx.annotations](authority::KeyedAnswerCallback answer) mutable {
    ca.enroll(std::move(input),
              [answer = std::move(answer), fresh, retry, annotations](Result<authority::EnrollmentResult> r) {
                if (!r) return answer(fail(r.error()));
                annotations->set_serial(r->serial_hex);
                *fresh = enrollment_response(*r, retry);
                answer(authority::KeyedAnswer{authority::KeyedAnswer::Kind::fresh,
                                              static_cast<int>(fresh->result_int()), fresh->body()});
              });
  };
  auto done = [respond, fresh, annotations = ctx.annotations](Result<authority::KeyedAnswer> answer) {
    if (!answer) return respond(error_response(answer.error()));
    switch (answer->kind) {
      case authority::KeyedAnswer::Kind::fresh:
        return respond(std::move(*fresh));
      case authority::KeyedAnswer::Kind::replayed:
        return respond(replayed_response(*answer, *annotations));
      case authority::KeyedAnswer::Kind::in_progress:
        break;
    }
    auto res = error_response(Error::conflict("a request with this Idempotency-Key is still being processed; retry"));
    res.set(bhttp::field::retry_after, "1");
    respond(std::move(res));
  };
  const auto& req = *ctx.request;
  keys.submit(req["Idempotency-Key"], authority::IdempotencyKeys::digest(req.body()), ctx.received_at, std::move(work),
              std::move(done));
}

// POST /ca/rest/certrequests {"profile_id", "csr", "enrollment_code"?}: 201 with the certificate
// once the records are durable, or 202 when an agent has to approve it.
void submit_enrollment(authority::CertificateAuthority& ca, authority::IdempotencyKeys* keys, const RequestContext& ctx,
                       const Responder& respond) {
  const auto& req = *ctx.request;
  auto body = parse_json_object(req);
  if (!body) return respond(error_response(body.error()));
  authority::EnrollmentInput input;
  if (auto filled = fill_enrollment_input(*body, input); !filled) return respond(error_response(filled.error()));
  input.peer = peer_of(ctx);
  if (req.find("Idempotency-Key") != req.end()) {
    if (!keys) return respond(error_response(Error::unavailable("this server does not keep Idempotency-Keys")));
    return submit_keyed_enrollment(ca, *keys, ctx, std::move(input), respond);
  }
  ca.enroll(std::move(input), [respond, annotations = ctx.annotations,
                               retry = ca.config().ca.retry_after_seconds](Result<authority::EnrollmentResult> r) {
    if (!r) return respond(error_response(r.error()));
    annotations->set_serial(r->serial_hex);
    respond(enrollment_response(*r, retry));
  });
}

void register_request_reads(Router& router, authority::CertificateAuthority& ca) {
  // GET /ca/rest/certrequests/{id}: for the requester (X-Request-Secret header or ?secret=) or an agent.
  router.add(bhttp::verb::get, "/ca/rest/certrequests/{id}", [&ca](RequestContext ctx, const Responder& respond) {
    auto id = authority::parse_number_text(ctx.path_params.at("id"), "request id");
    if (!id) return respond(error_response(id.error()));
    std::string secret;
    if (auto h = ctx.request->find("X-Request-Secret"); h != ctx.request->end())
      secret = std::string(h->value());
    else if (auto q = ctx.query.find("secret"); q != ctx.query.end())
      secret = q->second;
    auto agent = ca.agents().identify(ctx.peer_certificate);
    if (!agent) return respond(error_response(agent.error()));
    if (*agent) ctx.annotations->set_agent((*agent)->display());
    ca.read_request(*id, secret, *agent,
                    [respond, retry = ca.config().ca.retry_after_seconds](Result<authority::RequestView> view) {
                      if (!view) return respond(error_response(view.error()));
                      auto res = json_response(bhttp::status::ok, request_json(view->record, view->certificate_pem));
                      if (view->record.state == "pending" || view->record.state == "approved")
                        res.set(bhttp::field::retry_after, std::to_string(retry));
                      respond(std::move(res));
                    });
  });
}

// Agents: the queue of requests, approval and rejection, enrollment codes.
void register_agent_queue(Router& router, authority::CertificateAuthority& ca) {
  router.add(
      bhttp::verb::get, "/ca/rest/agent/certrequests",
      for_approvers(ca, [&ca](const RequestContext& ctx, const authority::AgentIdentity&, const Responder& respond) {
        auto result = [&]() -> Result<json::object> {
          store::RequestQuery q;
          q.state = query_text(ctx, "status");
          if (!q.state.empty() && q.state != "pending" && q.state != "approved" && q.state != "complete" &&
              q.state != "rejected")
            return fail(Error::bad_request("status: expected pending, approved, complete or rejected"));
          CA_TRY(q.start, query_number(ctx, "start", 0, 0, 100000000));
          CA_TRY(q.size, query_number(ctx, "size", 20, 1, 1000));
          CA_TRY(auto page, ca.list_requests(q));
          json::array entries;
          for (const auto& r : page.entries) entries.push_back(request_json(r, ""));
          return page_json(std::move(entries), page.total, page.truncated, q.start, q.size);
        }();
        if (!result) return respond(error_response(result.error()));
        respond(json_response(bhttp::status::ok, *result));
      }));
}

void register_approvals(Router& router, authority::CertificateAuthority& ca) {
  // POST .../approve {"validity_days"?, "dns_names"?, "ip_addresses"?, "emails"?}
  router.add(bhttp::verb::post, "/ca/rest/agent/certrequests/{id}/approve",
             for_approvers(
                 ca, [&ca](const RequestContext& ctx, const authority::AgentIdentity& agent, const Responder& respond) {
                   auto changes = [&]() -> Result<authority::IssuanceOverrides> {
                     authority::IssuanceOverrides o;
                     if (ctx.request->body().empty()) return o;
                     CA_TRY(auto body, parse_json_object(*ctx.request));
                     for (const auto& [key, value] : body)
                       if (key != "validity_days" && key != "dns_names" && key != "ip_addresses" && key != "emails")
                         return fail(Error::bad_request(
                             fmt::format("unknown field '{}' (allowed: validity_days, dns_names, ip_addresses, emails)",
                                         std::string(key).substr(0, 64))));
                     if (auto* v = body.if_contains("validity_days")) {
                       if (!v->is_int64() || v->as_int64() < 1 || v->as_int64() > 36500)
                         return fail(Error::bad_request("field 'validity_days' must be a number of days"));
                       o.validity_days = static_cast<int>(v->as_int64());
                     }
                     CA_TRY(o.dns_names, optional_strings(body, "dns_names"));
                     CA_TRY(o.ip_addresses, optional_strings(body, "ip_addresses"));
                     CA_TRY(o.emails, optional_strings(body, "emails"));
                     return o;
                   }();
                   if (!changes) return respond(error_response(changes.error()));
                   auto id = authority::parse_number_text(ctx.path_params.at("id"), "request id");
                   if (!id) return respond(error_response(id.error()));
                   ca.approve(*id, agent, *changes,
                              [respond, annotations = ctx.annotations,
                               retry = ca.config().ca.retry_after_seconds](Result<authority::EnrollmentResult> r) {
                                if (!r) return respond(error_response(r.error()));
                                annotations->set_serial(r->serial_hex);
                                auto res = enrollment_response(*r, retry);
                                // The approval itself succeeded: 200, with the certificate when this instance issued
                                // it.
                                res.result(bhttp::status::ok);
                                respond(std::move(res));
                              });
                 }));

  router.add(bhttp::verb::post, "/ca/rest/agent/certrequests/{id}/reject",
             for_approvers(
                 ca, [&ca](const RequestContext& ctx, const authority::AgentIdentity& agent, const Responder& respond) {
                   auto result = [&]() -> Result<json::object> {
                     std::string reason;
                     if (!ctx.request->body().empty()) {
                       CA_TRY(auto body, parse_json_object(*ctx.request));
                       CA_TRY(reason, optional_string(body, "reason"));
                     }
                     CA_TRY(std::string id, authority::parse_number_text(ctx.path_params.at("id"), "request id"));
                     CA_TRY(auto record, ca.reject(id, agent, reason));
                     return request_json(record, "");
                   }();
                   if (!result) return respond(error_response(result.error()));
                   respond(json_response(bhttp::status::ok, *result));
                 }));
}

void register_enrollment_codes(Router& router, authority::CertificateAuthority& ca) {
  // POST /ca/rest/agent/enrollment-codes {"profile_id", "subject"?, "dns_names"?, "ip_addresses"?,
  // "emails"?, "expires_in_seconds"?} -> 201 {"code_id", "enrollment_code", "expires"}: shown once.
  router.add(bhttp::verb::post, "/ca/rest/agent/enrollment-codes",
             for_agents(ca.agents(), [&ca](const RequestContext& ctx, const authority::AgentIdentity& agent,
                                           const Responder& respond) {
               auto result = [&]() -> Result<json::object> {
                 CA_TRY(auto body, parse_json_object(*ctx.request));
                 for (const auto& [key, value] : body)
                   if (key != "profile_id" && key != "subject" && key != "dns_names" && key != "ip_addresses" &&
                       key != "emails" && key != "expires_in_seconds")
                     return fail(Error::bad_request(fmt::format("unknown field '{}'", std::string(key).substr(0, 64))));
                 authority::EnrollmentCodeSpec spec;
                 CA_TRY(spec.profile_id, required_string(body, "profile_id"));
                 CA_TRY(spec.subject_dn, optional_string(body, "subject"));
                 CA_TRY(auto dns, optional_strings(body, "dns_names"));
                 CA_TRY(auto ips, optional_strings(body, "ip_addresses"));
                 CA_TRY(auto emails, optional_strings(body, "emails"));
                 spec.dns_names = dns.value_or(std::vector<std::string>{});
                 spec.ip_addresses = ips.value_or(std::vector<std::string>{});
                 spec.emails = emails.value_or(std::vector<std::string>{});
                 if (auto* v = body.if_contains("expires_in_seconds")) {
                   if (!v->is_int64()) return fail(Error::bad_request("field 'expires_in_seconds' must be a number"));
                   spec.lifetime = std::chrono::seconds(v->as_int64());
                 }
                 CA_TRY(auto code, ca.create_enrollment_code(spec, agent));
                 json::object o;
                 o["code_id"] = code.id;
                 o["enrollment_code"] = code.code;
                 o["profile_id"] = code.profile_id;
                 o["expires"] = store::to_iso8601(code.expires_at);
                 if (!spec.subject_dn.empty()) o["subject"] = spec.subject_dn;
                 o["dns_names"] = strings_json(spec.dns_names);
                 o["ip_addresses"] = strings_json(spec.ip_addresses);
                 o["emails"] = strings_json(spec.emails);
                 return o;
               }();
               if (!result) return respond(error_response(result.error()));
               respond(json_response(bhttp::status::created, *result));
             }));
}

void register_certificate_reads(Router& router, authority::CertificateAuthority& ca) {
  // The CA certificate for relying parties (also on plain HTTP: it is public, and checked by its hash).
  router.add(
      bhttp::verb::get, "/ca/cacert.pem",
      [&ca](const RequestContext&, const Responder& respond) {
        respond(bytes_response(bhttp::status::ok, ca.info().certificate_pem, "application/pem-certificate-chain"));
      },
      Exposure::also_plain_http);

  router.add(bhttp::verb::get, "/ca/rest/certs/{serial}", [&ca](RequestContext ctx, const Responder& respond) {
    auto result = [&]() -> Result<json::object> {
      CA_TRY(std::string serial, authority::parse_number_text(ctx.path_params.at("serial"), "serial number"));
      CA_TRY(auto c, ca.find_certificate(serial));
      return certificate_json(c, true);
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::ok, *result));
  });

  router.add(bhttp::verb::get, "/ca/rest/certs", [&ca](RequestContext ctx, const Responder& respond) {
    auto result = [&]() -> Result<json::object> {
      store::CertificateQuery q;
      q.status = query_text(ctx, "status");
      q.profile_id = query_text(ctx, "profile");
      q.subject_contains = query_text(ctx, "subject");
      q.issued_by = query_text(ctx, "issued_by");
      CA_TRY(q.start, query_number(ctx, "start", 0, 0, 100000000));
      CA_TRY(q.size, query_number(ctx, "size", 20, 1, 1000));
      CA_TRY(auto page, ca.list_certificates(q));
      json::array entries;
      for (const auto& c : page.entries) entries.push_back(certificate_json(c, false));
      return page_json(std::move(entries), page.total, page.truncated, q.start, q.size);
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::ok, *result));
  });
}

void register_profiles_and_info(Router& router, authority::CertificateAuthority& ca) {
  router.add(bhttp::verb::get, "/ca/rest/profiles", [&ca](const RequestContext&, const Responder& respond) {
    json::array entries;
    for (const auto& p : ca.profiles()) {
      json::object o;
      o["id"] = p.id;
      o["name"] = p.name;
      o["description"] = p.description;
      o["enabled"] = p.enabled;
      o["validity_days"] = p.validity_days;
      json::array ku, eku;
      for (const auto& k : p.key_usage) ku.push_back(json::string(k));
      for (const auto& k : p.extended_key_usage) eku.push_back(json::string(k));
      o["key_usage"] = std::move(ku);
      o["extended_key_usage"] = std::move(eku);
      entries.push_back(std::move(o));
    }
    json::object body;
    body["total"] = entries.size();
    body["entries"] = std::move(entries);
    respond(json_response(bhttp::status::ok, body));
  });

  router.add(bhttp::verb::get, "/ca/rest/info", [&ca](const RequestContext&, const Responder& respond) {
    auto i = ca.info();
    auto counters = ca.counters();
    json::object o;
    o["version"] = i.version;
    o["instance_id"] = i.instance_id;
    o["replica_id"] = i.replica_id;
    json::object cert;
    cert["subject"] = i.subject_dn;
    cert["serial"] = display_hex(i.serial_hex);
    cert["not_after"] = i.not_after;
    cert["key_type"] = i.key_type;
    o["ca"] = std::move(cert);
    o["certificate_chain"] = i.certificate_pem;
    o["serial_generator"] = i.serial_generator;
    auto range_json = [](const authority::RangeState& s) {
      json::object r;
      if (s.current) r["current"] = store::format_range(*s.current);
      if (s.standby) r["standby"] = store::format_range(*s.standby);
      r["next"] = s.next;
      return r;
    };
    json::object ranges;
    ranges["serial"] = range_json(counters.serials);
    ranges["request"] = range_json(counters.requests);
    o["ranges"] = std::move(ranges);
    respond(json_response(bhttp::status::ok, o));
  });
}

}  // namespace

void register_ca_endpoints(Router& router, authority::CertificateAuthority& ca, authority::IdempotencyKeys* keys) {
  router.add(
      bhttp::verb::post, "/ca/rest/certrequests",
      [&ca, keys](const RequestContext& ctx, const Responder& respond) { submit_enrollment(ca, keys, ctx, respond); });
  register_request_reads(router, ca);
  register_agent_queue(router, ca);
  register_approvals(router, ca);
  register_enrollment_codes(router, ca);
  register_certificate_reads(router, ca);
  register_profiles_and_info(router, ca);
}

}  // namespace ca::http
