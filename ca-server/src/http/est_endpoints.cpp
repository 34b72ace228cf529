#include "http/est_endpoints.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "authority/issuance/csr_attributes.hpp"
#include "core/log.hpp"
#include "crypto/encoding.hpp"
#include "crypto/pem.hpp"
#include "http/peer.hpp"
#include "http/responses.hpp"

namespace ca::http {

namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view kLog = "est";
constexpr std::string_view kCertsOnly = "application/pkcs7-mime; smime-type=certs-only";

// RFC 7030 section 4: base64 DER bodies. Real clients (strongSwan) need it on one line.
Response base64_response(bhttp::status status, std::span<const uint8_t> der, std::string_view content_type) {
  auto res = bytes_response(status, crypto::base64_encode(der), content_type);
  res.set("Content-Transfer-Encoding", "base64");
  return res;
}

// Errors are human-readable text (RFC 7030 section 4.2.3); 401 asks for HTTP Basic.
Response est_error(const Error& e) {
  auto status = status_for(e.code);
  auto res = bytes_response(status, public_message(e) + "\n", "text/plain; charset=utf-8");
  if (status == bhttp::status::unauthorized) res.set(bhttp::field::www_authenticate, "Basic realm=\"EST\"");
  if (status == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "5");
  return res;
}

std::string media_type(const Request& req) {
  std::string_view type = req[bhttp::field::content_type];
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  std::string out(type.substr(0, 64));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The password of HTTP Basic credentials (an enrollment code); empty without an Authorization header.
Result<std::string> basic_password(const Request& req) {
  auto it = req.find(bhttp::field::authorization);
  if (it == req.end()) return std::string();
  std::string_view value = it->value();
  if (value.size() < 6 || (value.substr(0, 6) != "Basic " && value.substr(0, 6) != "basic "))
    return fail(Error::unauthorized("only HTTP Basic authentication (an enrollment code as password) is supported"));
  auto decoded = crypto::base64_decode(value.substr(6), "the Basic credentials", 1024);
  if (!decoded) return fail(Error::unauthorized("the Basic credentials are not base64"));
  std::string text(decoded->begin(), decoded->end());
  auto colon = text.find(':');
  if (colon == std::string::npos) return fail(Error::unauthorized("the Basic credentials have no ':'"));
  return text.substr(colon + 1);
}

// A PKCS#10 request body: application/pkcs10, base64 DER, checked (precise errors first).
Result<crypto::ParsedCsr> parsed_csr_body(const Request& req) {
  if (auto type = media_type(req); type != "application/pkcs10")
    return fail(Error(ErrorCode::unsupported_media,
                      fmt::format("expected Content-Type application/pkcs10 (a base64 DER request), got '{}'", type)));
  CA_TRY(auto der, crypto::base64_decode(req.body(), "the request body", 32768));
  return crypto::parse_csr_der(der);
}

// The same, as PEM for the authority.
Result<std::string> csr_body(const Request& req) {
  CA_TRY(auto parsed, parsed_csr_body(req));
  return "-----BEGIN CERTIFICATE REQUEST-----\n" + crypto::base64_encode(parsed.der, 64) +
         "-----END CERTIFICATE REQUEST-----\n";
}

struct Operation {
  authority::CertificateAuthority& ca;
  std::string default_profile;

  // The profile a label names, or the configured EST profile; 404 for an unknown or disabled one.
  Result<authority::Profile> profile(const RequestContext& ctx) const {
    auto it = ctx.path_params.find("label");
    std::string id = it == ctx.path_params.end() ? default_profile : it->second;
    for (auto& p : ca.profiles())
      if (p.id == id && p.enabled) return p;
    return fail(Error::not_found(fmt::format("no EST label (profile) '{}' here", id.substr(0, 64))));
  }
  std::string label(const RequestContext& ctx) const {
    auto it = ctx.path_params.find("label");
    return it == ctx.path_params.end() ? std::string() : it->second;
  }

  void cacerts(const RequestContext& ctx, const Responder& respond) const {
    if (!label(ctx).empty())
      if (auto p = profile(ctx); !p) return respond(est_error(p.error()));
    X509* ca_cert = ca.ca_certificate();
    auto der = crypto::certs_only_pkcs7(std::span<X509* const>(&ca_cert, 1));
    if (!der) return respond(est_error(der.error()));
    respond(base64_response(bhttp::status::ok, *der, kCertsOnly));
  }

  void csrattrs(const RequestContext& ctx, const Responder& respond) const {
    auto p = profile(ctx);
    if (!p) return respond(est_error(p.error()));
    respond(base64_response(bhttp::status::ok, authority::csr_attributes_der(*p), "application/csrattrs"));
  }

  void enroll(const RequestContext& ctx, bool reenroll, const Responder& respond) const {
    auto csr = csr_body(*ctx.request);
    if (!csr) return respond(est_error(csr.error()));
    auto password = basic_password(*ctx.request);
    if (!password) return respond(est_error(password.error()));
    authority::EnrollmentInput input;
    input.csr_pem = std::move(*csr);
    input.enrollment_code = std::move(*password);
    input.peer = peer_of(ctx);
    if (reenroll) {
      // The profile of the certificate being renewed, unless a label names another.
      input.renewal_only = true;
      input.profile_id = label(ctx);
      if (!input.profile_id.empty())
        if (auto p = profile(ctx); !p) return respond(est_error(p.error()));
      if (ctx.peer_certificate.empty())
        return respond(
            est_error(Error::unauthorized("simplereenroll needs the current certificate as TLS client certificate")));
    } else {
      auto p = profile(ctx);
      if (!p) return respond(est_error(p.error()));
      input.profile_id = p->id;
      input.repeat_finds_earlier = true;  // EST clients poll by sending the same request again
    }
    const int retry_after = ca.config().ca.retry_after_seconds;
    ca.enroll(std::move(input), [respond, reenroll, retry_after,
                                 annotations = ctx.annotations](Result<authority::EnrollmentResult> r) {
      if (!r) return respond(est_error(r.error()));
      annotations->set_serial(r->serial_hex);
      if (r->request_status != "complete") {
        // RFC 7030 section 4.2.3: 202 and Retry-After; the client sends the same request again.
        auto res = bytes_response(bhttp::status::accepted,
                                  fmt::format("request 0x{} waits for a CA agent\n", r->request_id_hex),
                                  "text/plain; charset=utf-8");
        res.set(bhttp::field::retry_after, std::to_string(retry_after));
        return respond(std::move(res));
      }
      auto cert = crypto::parse_certificate_pem(r->certificate_pem);
      if (!cert) return respond(est_error(cert.error()));
      X509* leaf = cert->get();
      auto der = crypto::certs_only_pkcs7(std::span<X509* const>(&leaf, 1));
      if (!der) return respond(est_error(der.error()));
      log::info(kLog, "{}: serial 0x{} for '{}' (profile {}, {})", reenroll ? "simplereenroll" : "simpleenroll",
                r->serial_hex, r->subject_dn, r->profile_id, r->authenticated_by);
      respond(base64_response(bhttp::status::ok, *der, kCertsOnly));
    });
  }

  // RFC 7030 section 4.4: the CA makes the key (archived like any server-generated key) for the
  // subject and names of the request, and answers multipart/mixed: the key as PKCS#8 (protected
  // by TLS only, as the client asked for no key encryption), then the certificate.
  void serverkeygen(const RequestContext& ctx, const Responder& respond) const {
    auto csr = parsed_csr_body(*ctx.request);
    if (!csr) return respond(est_error(csr.error()));
    auto password = basic_password(*ctx.request);
    if (!password) return respond(est_error(password.error()));
    auto p = profile(ctx);
    if (!p) return respond(est_error(p.error()));
    authority::EnrollmentInput input;
    input.profile_id = p->id;
    input.server_keygen = true;
    input.key_as_pkcs8 = true;
    input.subject_dn = csr->subject_text;
    input.dns_names = csr->dns_names;
    input.ip_addresses = csr->ip_addresses;
    input.emails = csr->emails;
    input.enrollment_code = std::move(*password);
    input.peer = peer_of(ctx);
    ca.enroll(std::move(input), [respond, annotations = ctx.annotations](Result<authority::EnrollmentResult> r) {
      if (!r) return respond(est_error(r.error()));
      annotations->set_serial(r->serial_hex);
      if (r->request_status != "complete" || r->private_key_pkcs8.empty())
        return respond(est_error(Error::internal("server-side key generation did not complete")));
      auto cert = crypto::parse_certificate_pem(r->certificate_pem);
      if (!cert) return respond(est_error(cert.error()));
      X509* leaf = cert->get();
      auto p7 = crypto::certs_only_pkcs7(std::span<X509* const>(&leaf, 1));
      if (!p7) return respond(est_error(p7.error()));
      const std::string boundary = "est-serverkeygen-boundary";
      std::string body = fmt::format(
          "--{0}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n{1}\r\n"
          "--{0}\r\nContent-Type: {2}\r\nContent-Transfer-Encoding: base64\r\n\r\n{3}\r\n--{0}--\r\n",
          boundary, crypto::base64_encode(r->private_key_pkcs8), kCertsOnly, crypto::base64_encode(*p7));
      OPENSSL_cleanse(r->private_key_pkcs8.data(), r->private_key_pkcs8.size());
      log::info(kLog, "serverkeygen: serial 0x{} for '{}' (profile {}, key {} archived)", r->serial_hex, r->subject_dn,
                r->profile_id, r->archived_key_id);
      auto res = bytes_response(bhttp::status::ok, std::move(body), "multipart/mixed; boundary=" + boundary);
      res.set(bhttp::field::cache_control, "no-store");
      respond(std::move(res));
    });
  }
};

}  // namespace

void register_est_endpoints(Router& router, authority::CertificateAuthority& ca, const std::string& default_profile) {
  auto op = std::make_shared<Operation>(Operation{ca, default_profile});
  // RFC 7030 labels are /.well-known/est/<label>/<operation>; clients that append
  // "/.well-known/est/<operation>" to a base URL themselves (strongSwan) reach a label with the
  // base URL https://host:port/<label>.
  for (std::string base : {"/.well-known/est/", "/.well-known/est/{label}/", "/{label}/.well-known/est/"}) {
    router.add(bhttp::verb::get, base + "cacerts",
               [op](const RequestContext& ctx, const Responder& respond) { op->cacerts(ctx, respond); });
    router.add(bhttp::verb::get, base + "csrattrs",
               [op](const RequestContext& ctx, const Responder& respond) { op->csrattrs(ctx, respond); });
    router.add(bhttp::verb::post, base + "simpleenroll",
               [op](const RequestContext& ctx, const Responder& respond) { op->enroll(ctx, false, respond); });
    router.add(bhttp::verb::post, base + "simplereenroll",
               [op](const RequestContext& ctx, const Responder& respond) { op->enroll(ctx, true, respond); });
    router.add(bhttp::verb::post, base + "serverkeygen",
               [op](const RequestContext& ctx, const Responder& respond) { op->serverkeygen(ctx, respond); });
    // Optional functions this CA does not offer: 501, as for any function a server lacks.
    for (const char* missing : {"fullcmc"})
      router.add(bhttp::verb::post, base + missing, [missing](const RequestContext&, const Responder& respond) {
        auto res = bytes_response(bhttp::status::not_implemented,
                                  fmt::format("{} is not offered by this CA: use simpleenroll\n", missing),
                                  "text/plain; charset=utf-8");
        respond(std::move(res));
      });
  }
}

}  // namespace ca::http
