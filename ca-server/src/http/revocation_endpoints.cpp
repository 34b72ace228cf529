#include "http/revocation_endpoints.hpp"

#include <ctime>

#include <fmt/format.h>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include "authority/issuance/serial_text.hpp"
#include "core/time_text.hpp"
#include "http/agent_handlers.hpp"
#include "http/responses.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

std::string http_date(std::chrono::system_clock::time_point t) { return utc_text(t, kHttpDate); }

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  return parse_utc_text(text, kHttpDate);
}

json::object revocation_json(const store::CertificateRecord& c) {
  json::object o;
  o["serial"] = authority::display_hex(c.serial_hex);
  o["status"] = c.status;
  o["subject"] = c.subject_dn;
  if (c.revoked_on) {
    o["revoked_on"] = utc_text(*c.revoked_on, kIso8601);
    o["reason"] = std::string(authority::revocation_reason_name(c.revocation_reason));
    o["revoked_by"] = c.revoked_by;
  }
  return o;
}

// Serves one CRL with caching headers; 304 when the client already has these bytes.
void serve_crl(const Request& req, const std::shared_ptr<const authority::PublishedCrl>& crl, Responder& respond) {
  if (!crl || crl->der.empty()) return respond(error_response(Error::unavailable("no CRL has been published yet")));
  auto now = std::chrono::system_clock::now();
  auto max_age =
      std::max<long long>(0, std::chrono::duration_cast<std::chrono::seconds>(crl->next_update - now).count());
  auto add_headers = [&](Response& r) {
    r.set(bhttp::field::etag, crl->etag);
    r.set(bhttp::field::last_modified, http_date(crl->this_update));
    r.set(bhttp::field::expires, http_date(crl->next_update));
    r.set(bhttp::field::cache_control, fmt::format("public, max-age={}, no-transform", max_age));
  };
  bool not_modified = false;
  if (auto inm = req.find(bhttp::field::if_none_match); inm != req.end()) {
    std::string_view tags = inm->value();
    not_modified = tags == "*" || tags.find(crl->etag) != std::string_view::npos;
  } else if (auto ims = req.find(bhttp::field::if_modified_since); ims != req.end()) {
    auto since = parse_http_date(ims->value());
    not_modified = since && std::chrono::time_point_cast<std::chrono::seconds>(crl->this_update) <= *since;
  }
  if (not_modified) {
    Response r{bhttp::status::not_modified, req.version()};
    add_headers(r);
    return respond(std::move(r));
  }
  Response r = bytes_response(bhttp::status::ok, std::string(crl->der.begin(), crl->der.end()), "application/pkix-crl");
  add_headers(r);
  respond(std::move(r));
}

Result<json::object> optional_json_object(const Request& req) {
  if (req.body().empty()) return json::object{};
  return parse_json_object(req);
}

}  // namespace

void register_agent_endpoints(Router& router, authority::AgentAuthenticator& agents,
                              authority::RevocationService& revocation) {
  router.add(bhttp::verb::post, "/ca/rest/agent/certs/{serial}/revoke",
             [&agents, &revocation](RequestContext ctx, const Responder& respond) {
               auto result = [&]() -> Result<json::object> {
                 CA_TRY(auto agent, authenticate_agent(agents, ctx));
                 CA_TRY(std::string serial,
                        authority::parse_number_text(ctx.path_params.at("serial"), "serial number"));
                 CA_TRY(auto body, optional_json_object(*ctx.request));
                 std::string reason = "unspecified", invalidity;
                 if (auto* v = body.if_contains("reason")) {
                   if (!v->is_string()) return fail(Error::bad_request("field 'reason' must be a string"));
                   reason = std::string(v->as_string());
                 }
                 if (auto* v = body.if_contains("invalidity_date")) {
                   if (!v->is_string()) return fail(Error::bad_request("field 'invalidity_date' must be a string"));
                   invalidity = std::string(v->as_string());
                 }
                 CA_TRY(auto record, revocation.revoke(serial, reason, invalidity, agent));
                 ctx.annotations->set_serial(record.serial_hex);
                 return revocation_json(record);
               }();
               if (!result) return respond(error_response(result.error()));
               respond(json_response(bhttp::status::ok, *result));
             });
  router.add(bhttp::verb::post, "/ca/rest/agent/certs/{serial}/unrevoke",
             [&agents, &revocation](RequestContext ctx, const Responder& respond) {
               auto result = [&]() -> Result<json::object> {
                 CA_TRY(auto agent, authenticate_agent(agents, ctx));
                 CA_TRY(std::string serial,
                        authority::parse_number_text(ctx.path_params.at("serial"), "serial number"));
                 CA_TRY(auto record, revocation.unrevoke(serial, agent));
                 ctx.annotations->set_serial(record.serial_hex);
                 return revocation_json(record);
               }();
               if (!result) return respond(error_response(result.error()));
               respond(json_response(bhttp::status::ok, *result));
             });
}

namespace {
// Which CRL a name asks for: MasterCRL[-<k>][-delta].crl (k = partition), or the Dogtag issuing
// point MasterCRL[-<k>]. nullopt = no such CRL here.
struct CrlChoice {
  std::optional<std::size_t> partition;
  bool delta = false;
};
std::optional<CrlChoice> parse_crl_name(std::string_view name, bool with_suffix) {
  CrlChoice choice;
  if (with_suffix) {
    if (!name.ends_with(".crl")) return std::nullopt;
    name.remove_suffix(4);
    if (name.ends_with("-delta")) {
      choice.delta = true;
      name.remove_suffix(6);
    }
  }
  if (!name.starts_with("MasterCRL")) return std::nullopt;
  name.remove_prefix(9);
  if (name.empty()) return choice;
  if (name.front() != '-' || name.size() < 2 || name.size() > 3) return std::nullopt;
  std::size_t k = 0;
  for (char c : name.substr(1)) {
    if (c < '0' || c > '9') return std::nullopt;
    k = k * 10 + static_cast<std::size_t>(c - '0');
  }
  choice.partition = k;
  return choice;
}

void serve_choice(const Request& req, const authority::CrlSet& set, const CrlChoice& choice, Responder& respond) {
  if (!choice.partition) return serve_crl(req, choice.delta ? set.delta : set.full, respond);
  if (*choice.partition >= set.partitions.size())
    return respond(error_response(Error::not_found(
        fmt::format("no CRL partition {} (this CA publishes {})", *choice.partition, set.partitions.size()))));
  const auto& pair = set.partitions[*choice.partition];
  serve_crl(req, choice.delta ? pair.delta : pair.full, respond);
}
}  // namespace

void register_crl_endpoints(Router& router, authority::CrlPublisher& crls) {
  // CRLs, OCSP and the CA certificate are what relying parties fetch, often over plain HTTP
  // (RFC 5280 CDPs and RFC 6960): they are signed, so transport security adds nothing.
  // /crl/MasterCRL.crl, /crl/MasterCRL-delta.crl, and per partition /crl/MasterCRL-<k>[-delta].crl.
  router.add(
      bhttp::verb::get, "/crl/{file}",
      [&crls](RequestContext ctx, Responder respond) {
        const std::string& file = ctx.path_params.at("file");
        auto choice = parse_crl_name(file, true);
        if (!choice)
          return respond(error_response(Error::not_found(fmt::format("no CRL named '{}'", file.substr(0, 64)))));
        serve_choice(*ctx.request, crls.latest(), *choice, respond);
      },
      Exposure::also_plain_http);
  // Dogtag's path: /ca/ee/ca/getCRL?op=getCRL|getDeltaCRL&crlIssuingPoint=MasterCRL[-<k>]
  router.add(
      bhttp::verb::get, "/ca/ee/ca/getCRL",
      [&crls](RequestContext ctx, Responder respond) {
        auto op = ctx.query.count("op") ? ctx.query.at("op") : std::string("getCRL");
        auto point = ctx.query.count("crlIssuingPoint") ? ctx.query.at("crlIssuingPoint") : std::string("MasterCRL");
        auto choice = parse_crl_name(point, false);
        if (!choice)
          return respond(
              error_response(Error::not_found(fmt::format("no CRL issuing point '{}'", point.substr(0, 64)))));
        if (op == "getCRL" || op == "getDeltaCRL") {
          choice->delta = op == "getDeltaCRL";
          return serve_choice(*ctx.request, crls.latest(), *choice, respond);
        }
        respond(error_response(
            Error::bad_request(fmt::format("unknown op '{}' (use getCRL or getDeltaCRL)", op.substr(0, 64)))));
      },
      Exposure::also_plain_http);
}

void register_ocsp_endpoints(Router& router, authority::OcspResponder& ocsp,
                             std::chrono::milliseconds try_later_after) {
  auto ocsp_response = [](std::vector<uint8_t> der) {
    Response r = bytes_response(bhttp::status::ok, std::string(der.begin(), der.end()), "application/ocsp-response");
    r.set(bhttp::field::cache_control, "no-cache");
    return r;
  };
  // Looks the certificates up; a client whose answer the directory holds up gets tryLater in
  // time, with Connection: close so that its retry may reach another instance.
  auto answer = [&ocsp, ocsp_response, try_later_after](RequestContext& ctx, std::span<const uint8_t> der,
                                                        Responder& respond) {
    Response late = ocsp_response(ocsp.try_later());
    late.keep_alive(false);
    ctx.answer_if_late(try_later_after, std::move(late));
    respond(ocsp_response(ocsp.respond(der)));
  };
  router.add(
      bhttp::verb::post, "/ocsp",
      [answer](RequestContext ctx, Responder respond) {
        const auto& body = ctx.request->body();
        answer(ctx, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(body.data()), body.size()), respond);
      },
      Exposure::also_plain_http);
  // RFC 6960 A.1.1: GET /ocsp/{url-encoding of base64 of DER}.
  router.add(
      bhttp::verb::get, "/ocsp/{request}",
      [answer](RequestContext ctx, Responder respond) {
        namespace b64 = boost::beast::detail::base64;
        const std::string& text = ctx.path_params.at("request");
        std::string der(b64::decoded_size(text.size()), '\0');
        auto [written, read] = b64::decode(der.data(), text.data(), text.size());
        der.resize(read == text.size() ? written : 0);
        answer(ctx, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(der.data()), der.size()), respond);
      },
      Exposure::also_plain_http);
}

}  // namespace ca::http
