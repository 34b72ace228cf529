#include "authority/issuance/enrollment_authenticators.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <utility>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/x509v3.h>

#include "authority/access/one_time_secret.hpp"
#include "authority/access/presented_certificate.hpp"
#include "authority/issuance/name_syntax.hpp"
#include "core/log.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {

constexpr std::string_view kLog = "authority";
constexpr std::string_view kEnrollmentCode = "enrollment_code";
constexpr std::string_view kClientCertificate = "client_certificate";
constexpr std::string_view kNone = "none";

constexpr std::array<std::string_view, 4> kNames{kAgentApproval, kEnrollmentCode, kClientCertificate, kNone};

// The names a request asks for, in the forms codes and certificates are compared in.
std::vector<std::string> comparable_names(const IssuancePlan& plan) {
  std::vector<std::string> names;
  names.reserve(plan.dns_names.size() + plan.ip_addresses.size() + plan.emails.size());
  for (const auto& d : plan.dns_names) names.push_back("dns:" + lower_ascii(d));
  for (const auto& ip : plan.ip_addresses) names.push_back("ip:" + canonical_ip(ip));
  for (const auto& m : plan.emails) names.push_back("email:" + lower_ascii(m));
  return names;
}

// The subjectAltNames of a certificate, in the same forms.
std::vector<std::string> certificate_names(X509* certificate) {
  std::vector<std::string> have;
  auto* raw = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  if (!raw) return have;
  for (int i = 0; i < sk_GENERAL_NAME_num(raw); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(raw, i);
    int type = 0;
    auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(gn, &type));
    std::string bytes(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                      static_cast<std::size_t>(ASN1_STRING_length(value)));
    if (type == GEN_DNS) {
      have.push_back("dns:" + lower_ascii(bytes));
    } else if (type == GEN_EMAIL) {
      have.push_back("email:" + lower_ascii(bytes));
    } else if (type == GEN_IPADD) {
      char text[INET6_ADDRSTRLEN];
      const int family = bytes.size() == 4 ? AF_INET : bytes.size() == 16 ? AF_INET6 : AF_UNSPEC;
      if (family != AF_UNSPEC && inet_ntop(family, bytes.data(), text, sizeof text))
        have.push_back(std::string("ip:") + text);
    }
  }
  GENERAL_NAMES_free(raw);
  return have;
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A code bound to names but to no subject binds the subject too: a CN that is one of its names,
// nothing else (no organisation the agent never saw).
Status check_subject_among_names(const std::vector<std::string>& allowed, const IssuancePlan& plan) {
  for (int i = 0; i < X509_NAME_entry_count(plan.subject.get()); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(plan.subject.get(), i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                      static_cast<std::size_t>(ASN1_STRING_length(data)));
    if (nid != NID_commonName ||
        !(listed(allowed, "dns:" + lower_ascii(value)) || listed(allowed, "ip:" + canonical_ip(value)) ||
          listed(allowed, "email:" + lower_ascii(value))))
      return fail(
          Error::forbidden(fmt::format("this enrollment code allows only a subject of one CN among its names, not '{}'",
                                       crypto::name_to_string(plan.subject.get()).substr(0, 128))));
  }
  return ok();
}

Status check_code_binding(const store::EnrollmentCodeRecord& record, const IssuancePlan& plan) {
  if (!record.subject_dn.empty()) {
    CA_TRY(auto allowed, crypto::parse_name(record.subject_dn));
    if (X509_NAME_cmp(allowed.get(), plan.subject.get()) != 0)
      return fail(Error::forbidden(fmt::format("this enrollment code allows the subject '{}', not '{}'",
                                               record.subject_dn, crypto::name_to_string(plan.subject.get()))));
  }
  if (record.allowed_names.empty()) return ok();
  std::vector<std::string> allowed;
  allowed.reserve(record.allowed_names.size());
  for (const auto& n : record.allowed_names) allowed.push_back(lower_ascii(n));
  for (const auto& name : comparable_names(plan))
    if (!listed(allowed, name))
      return fail(Error::forbidden(fmt::format("this enrollment code does not allow the name {}", name)));
  if (record.subject_dn.empty()) return check_subject_among_names(allowed, plan);
  return ok();
}

// An agent's one-time code: issues at once what the code allows.
class EnrollmentCodeAuthenticator final : public EnrollmentAuthenticator {
 public:
  explicit EnrollmentCodeAuthenticator(store::CaStore& store) : store_(store) {}
  std::string_view name() const override { return kEnrollmentCode; }
  Admission admit(const AdmissionRequest& request) override {
    if (request.enrollment_code.empty()) return Admission::pass();
    auto code_id = check_enrollment_code(store_, request.enrollment_code, request.profile, request.plan);
    if (!code_id) return Admission::refuse(code_id.error());
    return Admission::issue("enrollment code " + *code_id, *code_id);
  }

 private:
  store::CaStore& store_;
};

// The holder of a valid certificate of this CA renews it: same subject, no new names. When that
// fails and the profile also accepts agent approval, the request goes to the agents instead.
class ClientCertificateAuthenticator final : public EnrollmentAuthenticator {
 public:
  ClientCertificateAuthenticator(store::CaStore& store, X509* ca_certificate)
      : store_(store), ca_certificate_(ca_certificate) {}
  std::string_view name() const override { return kClientCertificate; }
  Admission admit(const AdmissionRequest& request) override {
    const Profile& profile = request.profile;
    if (request.peer.certificate.empty() || !(profile.accepts(name()) || request.renewal_only)) {
      if (request.renewal_only)
        return Admission::refuse(
            Error::unauthorized("re-enrollment needs the current certificate as TLS client certificate"));
      return Admission::pass();
    }
    auto presented = check_presented_certificate(store_, ca_certificate_, request.peer.certificate,
                                                 "the holder of a certificate of this CA");
    Status renewal = presented ? check_renewal(presented->certificate.get(), presented->subject_dn, request.plan)
                               : Status(fail(presented.error()));
    if (renewal && !profile.accepts(name()))
      renewal = fail(Error::forbidden(
          fmt::format("profile {} does not accept renewal by the holder of a certificate", profile.id)));
    if (renewal) return Admission::issue(fmt::format("certificate 0x{}", presented->serial_hex));
    if (request.renewal_only || !profile.accepts(kAgentApproval)) return Admission::refuse(renewal.error());
    log::info(kLog, "request for '{}' goes to the agents: {}", request.plan.subject_text, renewal.error().message);
    return Admission::pass();
  }

 private:
  store::CaStore& store_;
  X509* ca_certificate_;
};

// The request waits for an agent (or, by an enrollment code or certificate above, not at all).
class AgentApprovalAuthenticator final : public EnrollmentAuthenticator {
 public:
  std::string_view name() const override { return kAgentApproval; }
  Admission admit(const AdmissionRequest& request) override {
    return request.profile.accepts(name()) ? Admission::queue("anonymous") : Admission::pass();
  }
};

// Anyone, no check at all: only where a profile lists `none`.
class OpenAuthenticator final : public EnrollmentAuthenticator {
 public:
  std::string_view name() const override { return kNone; }
  Admission admit(const AdmissionRequest& request) override {
    return request.profile.accepts(name()) ? Admission::issue("anonymous") : Admission::pass();
  }
};

}  // namespace

std::span<const std::string_view> enrollment_authenticator_names() { return kNames; }

EnrollmentAuthenticators::EnrollmentAuthenticators(std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain)
    : chain_(std::move(chain)) {}

Admission EnrollmentAuthenticators::admit(const AdmissionRequest& request) const {
  for (const auto& authenticator : chain_) {
    Admission admission = authenticator->admit(request);
    if (admission.decision == Admission::Decision::pass) continue;
    admission.by = authenticator->name();
    return admission;
  }
  return Admission::refuse(Error::unauthorized(
      fmt::format("profile {} needs one of: {}", request.profile.id, fmt::join(request.profile.auth, ", "))));
}

EnrollmentAuthenticators make_enrollment_authenticators(store::CaStore& store, X509* ca_certificate) {
  std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain;
  chain.push_back(std::make_unique<EnrollmentCodeAuthenticator>(store));
  chain.push_back(std::make_unique<ClientCertificateAuthenticator>(store, ca_certificate));
  chain.push_back(std::make_unique<AgentApprovalAuthenticator>());
  chain.push_back(std::make_unique<OpenAuthenticator>());
  return EnrollmentAuthenticators(std::move(chain));
}

Result<std::string> check_enrollment_code(store::CaStore& store, std::string_view code, const Profile& profile,
                                          const IssuancePlan& plan) {
  if (!profile.accepts(kEnrollmentCode))
    return fail(Error::forbidden(fmt::format("profile {} does not accept enrollment codes", profile.id)));
  const auto dot = code.find('.');
  const std::string invalid = "the enrollment code is not valid";
  if (dot == std::string_view::npos || dot == 0 || code.size() > 200) return fail(Error::forbidden(invalid));
  std::string id(code.substr(0, dot));
  for (char c : id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return fail(Error::forbidden(invalid));
  auto record = store.find_enrollment_code(id);
  if (!record) {
    if (record.error().is(ErrorCode::not_found)) return fail(Error::forbidden(invalid));
    return fail(record.error());
  }
  if (!secret_matches(record->secret_hash, code.substr(dot + 1))) return fail(Error::forbidden(invalid));
  if (record->state != "unused") return fail(Error::forbidden("this enrollment code was already used"));
  if (record->expires_at <= std::chrono::system_clock::now())
    return fail(Error::forbidden("this enrollment code has expired"));
  if (record->profile_id != profile.id)
    return fail(Error::forbidden(
        fmt::format("this enrollment code is for profile {}, not {}", record->profile_id, profile.id)));
  CA_CHECK(check_code_binding(*record, plan));
  return id;
}

Status check_renewal(X509* certificate, std::string_view certificate_subject, const IssuancePlan& plan) {
  if (X509_NAME_cmp(X509_get_subject_name(certificate), plan.subject.get()) != 0)
    return fail(Error::forbidden(fmt::format("the client certificate is for '{}', the request for '{}'",
                                             certificate_subject, crypto::name_to_string(plan.subject.get()))));
  const auto have = certificate_names(certificate);
  for (const auto& name : comparable_names(plan))
    if (!listed(have, name))
      return fail(Error::forbidden(fmt::format("the client certificate does not hold the name {}", name)));
  return ok();
}

}  // namespace ca::authority
