#pragma once
// How a request earns its certificate: one object per way of proving it, named in a profile's
// `auth:` (authority/issuance/profile.hpp). Today: an enrollment code, the certificate being
// renewed, an agent's approval later, or nothing at all. A protocol with a proof of its own (an
// ACME order's authorizations, a SCEP challenge password) adds one class here, its name to
// enrollment_authenticator_names() and a line to make_enrollment_authenticators(), and changes no
// other enrollment code: every front end reaches them through CertificateAuthority::enroll.
//
// Role profiles (a certificate that makes its holder an agent, administrator or auditor) are not
// judged here: they always wait for an administrator (CertificateAuthority::authorize).
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authority/access/peer_identity.hpp"
#include "authority/issuance/csr_policy.hpp"
#include "authority/issuance/profile.hpp"
#include "core/error.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

// What an authenticator made of a request.
struct Admission {
  enum class Decision { pass, issue, queue, refuse };
  Decision decision = Decision::pass;
  std::string by;              // the authenticator that decided ("enrollment_code", ...): the result's authenticated_by
  std::string who;             // issue: who authorized it, as records show it; queue: the requester
  std::string code_id;         // issue by an enrollment code: the code the issuance spends
  std::optional<Error> error;  // refuse

  static Admission pass() { return {}; }
  static Admission issue(std::string who, std::string code_id = {}) {
    return {Decision::issue, {}, std::move(who), std::move(code_id), std::nullopt};
  }
  static Admission queue(std::string requester) {
    return {Decision::queue, {}, std::move(requester), {}, std::nullopt};
  }
  static Admission refuse(Error error) { return {Decision::refuse, {}, {}, {}, std::move(error)}; }
};

// What an authenticator sees of a request: its profile, what the profile made of the CSR, who sent
// it and the credentials it carries.
struct AdmissionRequest {
  const Profile& profile;
  const IssuancePlan& plan;
  const PeerIdentity& peer;
  std::string_view enrollment_code;  // "<id>.<secret>", or empty
  bool renewal_only = false;         // EST re-enrollment: only the presented certificate may authorize it
};

class EnrollmentAuthenticator {
 public:
  virtual ~EnrollmentAuthenticator() = default;
  // The name a profile lists in `auth:`.
  virtual std::string_view name() const = 0;
  // issue / queue / refuse, or pass when this authenticator has nothing to say about the request
  // (not listed by the profile, no credential of its kind). Called only while earlier ones passed.
  virtual Admission admit(const AdmissionRequest& request) = 0;
};

// The authenticators in the order they are tried.
class EnrollmentAuthenticators {
 public:
  explicit EnrollmentAuthenticators(std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain);
  // The first that does not pass decides (its name in `by`); when all pass, 401 naming what the
  // profile accepts.
  Admission admit(const AdmissionRequest& request) const;

 private:
  std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain_;
};

// This CA's chain: enrollment_code, client_certificate, agent_approval, none. `store` and
// `ca_certificate` must outlive it.
EnrollmentAuthenticators make_enrollment_authenticators(store::CaStore& store, X509* ca_certificate);

// The checks behind the enrollment_code and client_certificate authenticators, for tests and for
// callers that judge one credential alone.
// The code's id when `code` may issue `plan` under `profile` (403 with the reason otherwise).
[[nodiscard]] Result<std::string> check_enrollment_code(store::CaStore& store, std::string_view code,
                                                        const Profile& profile, const IssuancePlan& plan);
// OK when `certificate` holds the plan's subject and every name it asks for.
[[nodiscard]] Status check_renewal(X509* certificate, std::string_view certificate_subject, const IssuancePlan& plan);

}  // namespace ca::authority
