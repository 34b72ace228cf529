#include "http/dogtag_endpoints.hpp"

#include <fmt/format.h>

#include "authority/issuance/serial_text.hpp"
#include "crypto/encoding.hpp"
#include "crypto/pem.hpp"
#include "http/agent_handlers.hpp"
#include "http/peer.hpp"
#include "http/responses.hpp"
#include "http/url.hpp"
#include "http/xml.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace bhttp = boost::beast::http;
using authority::decimal_text;

namespace {

using Params = std::map<std::string, std::string>;

Response xml_response(bhttp::status status, std::string body) {
  return bytes_response(status, std::move(body), "application/xml; charset=UTF-8");
}

Response with_retry(Response res, bhttp::status status) {
  if (status == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "5");
  return res;
}

// Dogtag's error form for profileSubmit, getCertChain and profileProcess (certmonger reads
// /XMLResponse/Error and ignores the HTTP status; the status is for everyone else).
Response submit_error(const Error& e) {
  XmlWriter w;
  w.open("XMLResponse").element("Status", "1").element("Error", public_message(e));
  auto status = status_for(e.code);
  return with_retry(xml_response(status, w.finish()), status);
}

// The error form of the template-rendered pages (checkRequest, displayCertFromRequest,
// displayBySerial, profileList, profileReview): no header, the reason in /xml/fixed/errorDetails.
Response page_error(const Error& e) {
  XmlWriter w;
  w.open("xml").open("fixed").element("errorDetails", public_message(e)).element("unexpectedError", public_message(e));
  auto status = status_for(e.code);
  return with_retry(xml_response(status, w.finish()), status);
}

// The query string and, for a form post, the body (its values win). 415 for another body type.
Result<Params> form_params(const RequestContext& ctx) {
  Params params = ctx.query;
  const auto& req = *ctx.request;
  if (req.body().empty()) return params;
  std::string_view type = req[bhttp::field::content_type];
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type != "application/x-www-form-urlencoded")
    return fail(Error(
        ErrorCode::unsupported_media,
        fmt::format("expected an application/x-www-form-urlencoded form, got '{}'", std::string(type.substr(0, 64)))));
  CA_TRY(auto body, parse_query(req.body()));
  for (auto& [k, v] : body) params[k] = std::move(v);
  return params;
}

std::string param(const Params& p, const std::string& name) {
  auto it = p.find(name);
  return it == p.end() ? std::string() : it->second;
}

Result<std::string> required_param(const Params& p, const std::string& name) {
  std::string v = param(p, name);
  if (v.empty()) return fail(Error::bad_request(fmt::format("the form has no '{}'", name)));
  return v;
}

// The base64 lines of a PEM block, without its armor ("MIIB...\n...").
std::string pem_body(std::string_view pem) {
  auto begin = pem.find('\n');
  auto end = pem.find("-----END");
  if (begin == std::string_view::npos || end == std::string_view::npos || end < begin) return {};
  std::string out(pem.substr(begin + 1, end - begin - 1));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

// A CSR as Dogtag takes it: PEM, or bare base64 (whose '+' a careless form encoder turned into ' ').
std::string csr_as_pem(std::string text) {
  if (text.find("-----BEGIN") != std::string::npos) return text;
  for (char& c : text)
    if (c == ' ') c = '+';
  return "-----BEGIN CERTIFICATE REQUEST-----\n" + text + "\n-----END CERTIFICATE REQUEST-----\n";
}

std::string dogtag_state(const std::string& state) {
  if (state == "approved") return "pending";  // approved, issued by the instance that received it soon
  return state;                               // pending, complete, rejected, canceled
}

Result<std::string> chain_pkcs7_base64(X509* ca_certificate, X509* leaf) {
  std::vector<X509*> certs;
  if (leaf) certs.push_back(leaf);
  certs.push_back(ca_certificate);
  CA_TRY(auto der, crypto::certs_only_pkcs7(certs));
  return crypto::base64_encode(der, 64);
}

// The answer to profileSubmit (and profileProcess op=approve): issued, or deferred for an agent.
Response submit_answer(const authority::EnrollmentResult& r) {
  XmlWriter w;
  w.open("XMLResponse");
  if (r.request_status == "complete") {
    w.element("Status", "0");
    w.open("Requests").open("Request");
    w.element("Id", decimal_text(r.request_id_hex));
    w.element("SubjectDN", r.subject_dn);
    w.element("serialno", r.serial_hex);
    w.element("b64", pem_body(r.certificate_pem));
    w.close().close();
  } else {
    w.element("Status", "2");
    w.element("RequestId", decimal_text(r.request_id_hex));
    w.open("Requests").open("Request").element("Id", decimal_text(r.request_id_hex)).close().close();
  }
  return xml_response(r.request_status == "complete" ? bhttp::status::ok : bhttp::status::accepted, w.finish());
}

void submit(authority::CertificateAuthority& ca, const RequestContext& ctx, bool client_certificate_required,
            Responder respond) {
  auto reply_error = [&](const Error& e) { respond(submit_error(e)); };
  if (client_certificate_required && ctx.peer_certificate.empty())
    return reply_error(Error::unauthorized("profileSubmitSSLClient needs a TLS client certificate"));
  auto params = form_params(ctx);
  if (!params) return reply_error(params.error());
  // pin (caDirPinUserCert-style) or pwd: our one-time enrollment code.
  std::string code = param(*params, "pin");
  if (code.empty()) code = param(*params, "pwd");
  auto done = [respond, annotations = ctx.annotations](Result<authority::EnrollmentResult> r) {
    if (!r) return respond(submit_error(r.error()));
    annotations->set_serial(r->serial_hex);
    respond(submit_answer(*r));
  };
  if (param(*params, "renewal") == "true") {
    auto serial_text = required_param(*params, "serial_num");
    if (!serial_text) return reply_error(serial_text.error());
    auto serial = authority::parse_number_text(*serial_text, "serial number");
    if (!serial) return reply_error(serial.error());
    authority::RenewalInput input;
    input.profile_id = param(*params, "profileId");
    input.serial_hex = *serial;
    input.enrollment_code = code;
    input.peer = peer_of(ctx);
    return ca.renew(std::move(input), done);
  }
  auto profile = required_param(*params, "profileId");
  if (!profile) return reply_error(profile.error());
  std::string type = param(*params, "cert_request_type");
  if (!type.empty() && type != "pkcs10")
    return reply_error(Error::bad_request(
        fmt::format("cert_request_type '{}' is not supported; send a PKCS#10 request (pkcs10)", type.substr(0, 32))));
  auto csr = required_param(*params, "cert_request");
  if (!csr) return reply_error(csr.error());
  authority::EnrollmentInput input;
  input.profile_id = *profile;
  input.csr_pem = csr_as_pem(std::move(*csr));
  input.enrollment_code = code;
  input.peer = peer_of(ctx);
  ca.enroll(std::move(input), done);
}

Result<std::string> request_id_param(const Params& p) {
  CA_TRY(std::string text, required_param(p, "requestId"));
  return authority::parse_number_text(text, "request id");
}

// profileProcess?requestId=N&op=approve|reject: an agent decides on a request.
void process_request(authority::CertificateAuthority& ca, const RequestContext& ctx, const Responder& respond) {
  auto identity = authenticate_approver(ca, ctx);
  if (!identity) return respond(submit_error(identity.error()));
  auto params = form_params(ctx);
  if (!params) return respond(submit_error(params.error()));
  auto id = request_id_param(*params);
  if (!id) return respond(submit_error(id.error()));
  std::string op = param(*params, "op");
  if (op == "approve") {
    return ca.approve(*id, *identity, {},
                      [respond, annotations = ctx.annotations](Result<authority::EnrollmentResult> r) {
                        if (!r) return respond(submit_error(r.error()));
                        annotations->set_serial(r->serial_hex);
                        auto res = submit_answer(*r);
                        res.result(bhttp::status::ok);  // the approval itself succeeded
                        respond(std::move(res));
                      });
  }
  if (op == "reject") {
    auto record = ca.reject(*id, *identity, param(*params, "reason"));
    if (!record) return respond(submit_error(record.error()));
    XmlWriter w;
    w.open("XMLResponse").element("Status", "0").element("RequestId", decimal_text(record->id_hex));
    w.element("RequestStatus", record->state);
    return respond(xml_response(bhttp::status::ok, w.finish()));
  }
  respond(submit_error(
      Error::bad_request(fmt::format("op '{}' is not supported; use approve or reject", op.substr(0, 32)))));
}

const std::string kEndEntity = "/ca/ee/ca/";
const std::string kAgent = "/ca/agent/ca/";

void register_request_pages(Router& router, authority::CertificateAuthority& ca) {
  const std::string& ee = kEndEntity;
  // checkRequest?requestId=N: the state of a request, for anyone who knows its number (as in
  // Dogtag). Only the state, the number and the serial leave here: no CSR, no requester, not who
  // rejected it or why.
  router.add(bhttp::verb::get, ee + "checkRequest", [&ca](const RequestContext& ctx, const Responder& respond) {
    auto id = request_id_param(ctx.query);
    if (!id) return respond(page_error(id.error()));
    ca.check_request(*id, [respond](Result<authority::RequestView> view) {
      if (!view) return respond(page_error(view.error()));
      const auto& r = view->record;
      XmlWriter w;
      w.open("xml").open("header");
      w.element("requestId", decimal_text(r.id_hex));
      w.element("status", dogtag_state(r.state));
      w.element("requestType", r.type);
      w.element("profileId", r.profile_id);
      w.element(
          "createdOn",
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(r.created_at.time_since_epoch()).count()));
      w.element(
          "updatedOn",
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(r.modified_at.time_since_epoch()).count()));
      // Who rejected it and why is for the requester (with its secret) and agents, not for anyone
      // who can count request numbers.
      if (r.state == "rejected") w.element("errorDetails", "Request Rejected");
      w.close();
      w.open("fixed").close();
      w.open("records");
      if (!r.serial_hex.empty()) w.open("record").element("serialNumber", authority::display_hex(r.serial_hex)).close();
      respond(xml_response(bhttp::status::ok, w.finish()));
    });
  });

  // displayCertFromRequest?requestId=N: the certificate a complete request produced.
  router.add(bhttp::verb::get, ee + "displayCertFromRequest",
             [&ca](const RequestContext& ctx, const Responder& respond) {
               auto id = request_id_param(ctx.query);
               if (!id) return respond(page_error(id.error()));
               ca.check_request(*id, [&ca, respond](Result<authority::RequestView> view) {
                 if (!view) return respond(page_error(view.error()));
                 const auto& r = view->record;
                 if (r.state != "complete" || view->certificate_pem.empty())
                   return respond(page_error(Error::conflict(fmt::format(
                       "request {} is {}: it has no certificate", decimal_text(r.id_hex), dogtag_state(r.state)))));
                 auto cert = crypto::parse_certificate_pem(view->certificate_pem);
                 if (!cert) return respond(page_error(cert.error()));
                 auto chain = chain_pkcs7_base64(ca.ca_certificate(), cert->get());
                 if (!chain) return respond(page_error(chain.error()));
                 XmlWriter w;
                 w.open("xml").open("header").element("requestId", decimal_text(r.id_hex)).close();
                 w.open("fixed").close();
                 w.open("records").open("record");
                 w.element("serialNumber", authority::display_hex(r.serial_hex));
                 w.element("base64Cert", pem_body(view->certificate_pem));
                 w.element("pkcs7ChainBase64", *chain);
                 respond(xml_response(bhttp::status::ok, w.finish()));
               });
             });
}

void register_public_pages(Router& router, authority::CertificateAuthority& ca) {
  const std::string& ee = kEndEntity;
  // profileList: enabled profiles; agent profiles are listed as not visible.
  router.add(bhttp::verb::get, ee + "profileList", [&ca](const RequestContext&, const Responder& respond) {
    XmlWriter w;
    w.open("xml").open("output").open("set").open("record").open("list");
    for (const auto& p : ca.profiles()) {
      w.open("record").open("set");
      w.element("profileId", p.id);
      w.element("profileName", p.name.empty() ? p.id : p.name);
      w.element("profileDesc", p.description);
      w.element("profileIsEnable", p.enabled ? "true" : "false");
      w.element("profileIsVisible", p.role == "agent" ? "false" : "true");
      w.close().close();
    }
    respond(xml_response(bhttp::status::ok, w.finish()));
  });

  // displayBySerial?serialNumber=N (decimal or 0x hex): a certificate and its status (public).
  router.add(bhttp::verb::get, ee + "displayBySerial", [&ca](RequestContext ctx, const Responder& respond) {
    auto result = [&]() -> Result<std::string> {
      CA_TRY(std::string text, required_param(ctx.query, "serialNumber"));
      CA_TRY(std::string serial, authority::parse_number_text(text, "serial number"));
      CA_TRY(auto record, ca.find_certificate(serial));
      CA_TRY(auto cert, crypto::parse_certificate_der(record.der));
      CA_TRY(std::string chain, chain_pkcs7_base64(ca.ca_certificate(), cert.get()));
      XmlWriter w;
      w.open("xml").open("header");
      w.element("serialNumber", authority::display_hex(record.serial_hex));
      w.element("subjectDN", record.subject_dn);
      w.element("issuerDN", record.issuer_dn);
      w.element("notBefore", store::to_generalized_time(record.not_before));
      w.element("notAfter", store::to_generalized_time(record.not_after));
      w.element("certStatus", record.status);
      if (record.revoked_on) w.element("revocationReason", std::to_string(record.revocation_reason));
      w.element("certBase64", crypto::base64_encode(record.der, 64));
      w.element("certChainBase64", chain);
      return w.finish();
    }();
    if (!result) return respond(page_error(result.error()));
    respond(xml_response(bhttp::status::ok, std::move(*result)));
  });

  // getCertChain: the CA chain as a PKCS#7 bundle.
  router.add(bhttp::verb::get, ee + "getCertChain", [&ca](const RequestContext&, const Responder& respond) {
    auto chain = chain_pkcs7_base64(ca.ca_certificate(), nullptr);
    if (!chain) return respond(submit_error(chain.error()));
    XmlWriter w;
    w.open("XMLResponse").element("Status", "0").element("ChainBase64", *chain);
    respond(xml_response(bhttp::status::ok, w.finish()));
  });
}

// Agents (TLS client certificate of an agent): review a request, approve or reject it.
void register_agent_pages(Router& router, authority::CertificateAuthority& ca) {
  const std::string& agent = kAgent;
  for (auto verb : {bhttp::verb::post, bhttp::verb::get}) {
    router.add(verb, agent + "profileReview", [&ca](RequestContext ctx, const Responder& respond) {
      auto result = [&]() -> Result<std::string> {
        CA_TRY(auto identity, authenticate_approver(ca, ctx));
        (void)identity;
        CA_TRY(auto params, form_params(ctx));
        CA_TRY(std::string id, request_id_param(params));
        CA_TRY(auto r, ca.find_request(id));
        XmlWriter w;
        w.open("xml").open("header");
        w.element("requestId", decimal_text(r.id_hex));
        w.element("requestStatus", dogtag_state(r.state));
        w.element("requestType", r.type);
        w.element("profileId", r.profile_id);
        w.element("subjectDN", r.subject_dn);
        w.element("requestOwner", r.instance_id);
        w.element("requester", r.requester);
        w.element("requestCreationTime", store::to_generalized_time(r.created_at));
        if (!r.csr_der.empty())
          w.element(r.type == "renewal" ? "renewsBase64" : "csrBase64", crypto::base64_encode(r.csr_der, 64));
        return w.finish();
      }();
      if (!result) return respond(page_error(result.error()));
      respond(xml_response(bhttp::status::ok, std::move(*result)));
    });

    router.add(verb, agent + "profileProcess",
               [&ca](const RequestContext& ctx, const Responder& respond) { process_request(ca, ctx, respond); });
  }
}

}  // namespace

void register_dogtag_endpoints(Router& router, authority::CertificateAuthority& ca) {
  const std::string& ee = kEndEntity;
  const std::string& agent = kAgent;
  for (auto verb : {bhttp::verb::post, bhttp::verb::get}) {
    router.add(verb, ee + "profileSubmit",
               [&ca](const RequestContext& ctx, Responder respond) { submit(ca, ctx, false, std::move(respond)); });
    router.add(verb, ee + "profileSubmitSSLClient",
               [&ca](const RequestContext& ctx, Responder respond) { submit(ca, ctx, true, std::move(respond)); });
  }
  register_request_pages(router, ca);
  register_public_pages(router, ca);
  register_agent_pages(router, ca);

  // Every other operation of the two interfaces: Dogtag's error form, never an HTML page.
  for (const auto& base : {ee, agent})
    for (auto verb : {bhttp::verb::post, bhttp::verb::get})
      router.add(verb, base + "{operation}", [](RequestContext ctx, const Responder& respond) {
        respond(submit_error(Error::not_found(
            fmt::format("operation '{}' is not supported by this CA", ctx.path_params.at("operation").substr(0, 64)))));
      });
}

}  // namespace ca::http
