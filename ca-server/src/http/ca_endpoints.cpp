#include "http/ca_endpoints.hpp"

#include <charconv>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "authority/serial_text.hpp"
#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;
using authority::display_hex;

namespace {

std::string iso_time(store::TimePoint t) {
  std::string g = store::to_generalized_time(t);  // YYYYMMDDHHMMSSZ
  return fmt::format("{}-{}-{}T{}:{}:{}Z", g.substr(0, 4), g.substr(4, 2), g.substr(6, 2), g.substr(8, 2),
                     g.substr(10, 2), g.substr(12, 2));
}

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
  o["not_before"] = iso_time(c.not_before);
  o["not_after"] = iso_time(c.not_after);
  o["issued_at"] = iso_time(c.issued_at);
  o["profile_id"] = c.profile_id;
  if (!c.request_id_hex.empty()) o["request_id"] = display_hex(c.request_id_hex);
  o["issued_by"] = c.issued_by;
  o["replica_id"] = c.replica_id;
  if (c.revoked_on) {
    o["revoked_on"] = iso_time(*c.revoked_on);
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
    return fail(Error::bad_request(fmt::format("query parameter {}: expected a number from {} to {}, got '{}'", name, min,
                                               max, s.substr(0, 32))));
  return v;
}

std::string query_text(const RequestContext& ctx, const std::string& name) {
  auto it = ctx.query.find(name);
  return it == ctx.query.end() ? std::string() : it->second;
}

}  // namespace

void register_ca_endpoints(Router& router, authority::CertificateAuthority& ca) {
  // POST /ca/rest/certrequests {"profile_id", "csr"} -> 201 once the records are durable.
  router.add(bhttp::verb::post, "/ca/rest/certrequests", [&ca](RequestContext ctx, Responder respond) {
    const auto& req = *ctx.request;
    auto reply_error = [&](const Error& e) { respond(error_response(e)); };
    auto body = parse_json_object(req);
    if (!body) return reply_error(body.error());
    auto profile = required_string(*body, "profile_id");
    if (!profile) return reply_error(profile.error());
    auto csr = required_string(*body, "csr");
    if (!csr) return reply_error(csr.error());
    ca.enroll(*profile, *csr, [respond](Result<authority::EnrollmentResult> r) {
      if (!r) return respond(error_response(r.error()));
      json::object o;
      o["request_id"] = display_hex(r->request_id_hex);
      o["status"] = r->request_status;
      o["serial"] = display_hex(r->serial_hex);
      o["profile_id"] = r->profile_id;
      o["subject"] = r->subject_dn;
      o["certificate"] = r->certificate_pem;
      auto res = json_response(bhttp::status::created, o);
      res.set(bhttp::field::location, "/ca/rest/certrequests/" + display_hex(r->request_id_hex));
      respond(std::move(res));
    });
  });

  router.add(bhttp::verb::get, "/ca/rest/certrequests/{id}", [&ca](RequestContext ctx, Responder respond) {
    auto result = [&]() -> Result<json::object> {
      CA_TRY(std::string id, authority::parse_number_text(ctx.path_params.at("id"), "request id"));
      CA_TRY(auto r, ca.find_request(id));
      json::object o;
      o["request_id"] = display_hex(r.id_hex);
      o["type"] = r.type;
      o["status"] = r.state;
      o["profile_id"] = r.profile_id;
      if (!r.serial_hex.empty()) o["serial"] = display_hex(r.serial_hex);
      o["subject"] = r.subject_dn;
      o["created"] = iso_time(r.created_at);
      o["modified"] = iso_time(r.modified_at);
      o["result"] = r.result;
      o["issued_by"] = r.instance_id;
      if (!r.csr_der.empty()) o["csr"] = to_pem(r.csr_der, "CERTIFICATE REQUEST");
      return o;
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::ok, *result));
  });

  router.add(bhttp::verb::get, "/ca/rest/certs/{serial}", [&ca](RequestContext ctx, Responder respond) {
    auto result = [&]() -> Result<json::object> {
      CA_TRY(std::string serial, authority::parse_number_text(ctx.path_params.at("serial"), "serial number"));
      CA_TRY(auto c, ca.find_certificate(serial));
      return certificate_json(c, true);
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::ok, *result));
  });

  router.add(bhttp::verb::get, "/ca/rest/certs", [&ca](RequestContext ctx, Responder respond) {
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
      json::object o;
      o["total"] = page.total;
      o["start"] = q.start;
      o["size"] = q.size;
      o["entries"] = std::move(entries);
      return o;
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::ok, *result));
  });

  router.add(bhttp::verb::get, "/ca/rest/profiles", [&ca](RequestContext, Responder respond) {
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

  router.add(bhttp::verb::get, "/ca/rest/info", [&ca](RequestContext, Responder respond) {
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

}  // namespace ca::http
