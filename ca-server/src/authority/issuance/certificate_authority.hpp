#pragma once
// The authority: turns an enrollment request into a signed certificate that is durably recorded.
// Linear flow: parse CSR -> apply profile -> number -> sign -> commit (request + certificate) -> answer.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "authority/access/peer_identity.hpp"
#include "authority/audit/refusal_summary.hpp"
#include "authority/cluster/range_allocator.hpp"
#include "authority/cluster/single_use_claims.hpp"
#include "authority/issuance/csr_policy.hpp"
#include "authority/issuance/enrollment_authenticators.hpp"
#include "authority/issuance/profile.hpp"
#include "authority/key_recovery/key_recovery.hpp"
#include "authority/revocation/revocation.hpp"
#include "core/config.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/key_quality.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

// A submission, from any front end, and what the transport knows about who sent it.
struct EnrollmentInput {
  std::string profile_id;
  std::string csr_pem;
  std::string enrollment_code;  // "<id>.<secret>", or empty
  PeerIdentity peer;
  // Re-enrollment (EST simplereenroll): only the presented certificate may authorize it (no
  // fallback to the agents), and an empty profile_id means the profile of that certificate.
  bool renewal_only = false;
  // EST clients poll by sending the same CSR again: such a repeat finds the request it made
  // before (pending, approved, rejected, or issued after approval) instead of queueing another.
  bool repeat_finds_earlier = false;
  // Key archival (docs/key-archival.md). Server-side key generation: csr_pem stays empty, the CA
  // makes the key for subject_dn and the names, archives it and returns it as PKCS#12 under
  // pkcs12_password. Client-side: key_envelope is the CSR's private key in a CMS envelope to the
  // transport certificate. Both need a profile that allows them, and immediate issuance.
  bool server_keygen = false;
  std::string subject_dn;
  std::vector<std::string> dns_names, ip_addresses, emails;
  std::string pkcs12_password;
  bool key_as_pkcs8 = false;  // server-side generation for EST: the key comes back as PKCS#8 (over TLS)
  std::string key_envelope;
};

// A renewal "by serial" (Dogtag's profileSubmit with renewal=true): a new certificate for the key
// and names of one this CA issued, under the profile's authenticators like any request.
struct RenewalInput {
  std::string profile_id;  // empty: the profile of the certificate being renewed
  std::string serial_hex;
  std::string enrollment_code;
  PeerIdentity peer;
};

struct EnrollmentResult {
  std::string request_id_hex;
  std::string request_status;   // "complete", "pending" (waits for an agent) or "approved" (issued soon)
  std::string serial_hex;       // when complete
  std::string certificate_pem;  // when complete
  std::string subject_dn;
  std::string profile_id;
  std::string request_secret;              // in the answer to a submission only: lets the requester read the request
  std::string authenticated_by;            // the authenticator that let it through ("enrollment_code", ...)
  std::string archived_key_id;             // when the key was archived
  std::vector<uint8_t> pkcs12;             // server-side key generation: certificate + key (+ CA), password-protected
  std::vector<uint8_t> private_key_pkcs8;  // server-side key generation with key_as_pkcs8
};

// An enrollment code as an agent asks for it.
struct EnrollmentCodeSpec {
  std::string profile_id;
  std::string subject_dn;                                    // empty = any subject the profile allows
  std::vector<std::string> dns_names, ip_addresses, emails;  // empty = any names the profile allows
  std::chrono::seconds lifetime{std::chrono::hours(24)};
};

struct CreatedEnrollmentCode {
  std::string id;
  std::string code;  // "<id>.<secret>": shown once, stored only as a salted hash
  std::string profile_id;
  std::chrono::system_clock::time_point expires_at;
};

// A request as its requester or an agent sees it; the certificate once issued.
struct RequestView {
  store::RequestRecord record;
  std::string certificate_pem;
};

struct CaInfo {
  std::string subject_dn;
  std::string serial_hex;
  std::string certificate_pem;  // the chain: our CA certificate (self-signed root)
  std::string not_after;
  std::string key_type;
  std::string version;
  std::string instance_id;
  int replica_id = 0;
  std::string serial_generator;
};

struct CounterStatus {
  RangeState serials, requests;
};

class CertificateAuthority {
 public:
  // Loads the CA signing certificate and key from the instance folder, the profiles from the
  // directory and the counter ranges from this instance's replica entry.
  static Result<std::unique_ptr<CertificateAuthority>> open(const InstanceConfig& config, store::CaStore& store);
  ~CertificateAuthority();

  using EnrollmentCallback = std::function<void(Result<EnrollmentResult>)>;
  // Decode -> check the key -> apply the profile -> authenticate (the profile's authenticators)
  // -> issue at once, or store as pending for an agent. Validation and signing happen on the
  // calling thread; `done` runs once the records are durable (on a store thread) or at once on
  // error. Nothing is written for a refused request.
  void enroll(EnrollmentInput input, EnrollmentCallback done);
  // Renews a VALID certificate of this CA: the request is built from the certificate (key,
  // subject, names) and goes through the profile and its authenticators like enroll(); the
  // client_certificate authenticator accepts the certificate itself (or one with the same subject
  // and names). Stored as request type "renewal" holding the old certificate.
  void renew(RenewalInput input, EnrollmentCallback done);

  // Agents: approve (pending -> approved, a compare-and-set) and, when this instance received the
  // request, issue it at once; otherwise the instance that received it issues it (see
  // issue_approved_requests). Changes are checked against the profile before anything is written.
  void approve(std::string_view id_hex, const AgentIdentity& agent, const IssuanceOverrides& changes,
               EnrollmentCallback done);
  Result<store::RequestRecord> reject(std::string_view id_hex, const AgentIdentity& agent, std::string_view reason);
  Result<store::RequestPage> list_requests(const store::RequestQuery& query);
  Result<CreatedEnrollmentCode> create_enrollment_code(const EnrollmentCodeSpec& spec, const AgentIdentity& agent);

  // A request for its requester (secret) or an agent (agent set); issues it first when it is
  // approved and this instance received it. 401 without either, 403 for a wrong secret.
  void read_request(std::string_view id_hex, std::string_view secret, const std::optional<AgentIdentity>& agent,
                    std::function<void(Result<RequestView>)> done);
  // The subsystem certificate of a clone that registers (its identity towards other instances),
  // from the clone's CSR: subject "CN=Subsystem <instance_id>" under the CA's O, clientAuth only.
  // Recorded like any certificate (profile "subsystem:instance"). Returns the certificate PEM.
  struct InstanceCertificate {
    std::string serial_hex;
    std::string certificate_pem;
  };
  Result<InstanceCertificate> issue_instance_certificate(const std::string& csr_pem, const std::string& instance_id);

  // What Dogtag's checkRequest shows anyone who knows a request number: the caller reveals only
  // the state, the request number and the (public) certificate, never the CSR or the requester.
  // Issues the request first when it is approved and this instance received it.
  void check_request(std::string_view id_hex, const std::function<void(Result<RequestView>)>& done);

  // Issues the approved requests this instance received (run periodically); returns how many.
  Result<int> issue_approved_requests();

  Result<store::RequestRecord> find_request(std::string_view id_hex);
  Result<store::CertificateRecord> find_certificate(std::string_view serial_hex);
  Result<store::CertificatePage> list_certificates(const store::CertificateQuery& query);
  std::vector<Profile> profiles() const;
  // Re-reads the profiles from the directory (a profile added on one instance reaches all).
  Status reload_profiles();
  CaInfo info() const;
  CounterStatus counters() const;
  // The CA certificate and its key: what signs this instance's certificates, CRLs and probes
  // (borrowed, alive as long as the authority).
  const crypto::Issuer& issuer() const { return *issuer_; }
  X509* ca_certificate() const { return issuer_->certificate(); }
  AgentAuthenticator& agents() { return *agents_; }
  AgentAuthenticator& administrators() { return *administrators_; }
  AgentAuthenticator& auditors() { return *auditors_; }
  // Who may approve or reject requests: an agent, or an administrator (role certificates). 401
  // without a certificate, 403 for a certificate that holds neither role.
  Result<AgentIdentity> authenticate_approver(const crypto::PeerCertificate& peer, std::string_view call);
  // Key archival needs the instance's key archive (set once at start-up, before requests).
  void set_key_archive(KeyArchive* archive) { key_archive_ = archive; }
  // Where enrollment codes are spent cluster-wide (their home directory); without it (tools,
  // tests of one instance) only this directory's compare-and-set guards a code.
  void set_single_use_claims(SingleUseClaims* claims) { claims_ = claims; }
  // Issuance, refusals and agent decisions are recorded here, agent authentication too (set once
  // at start-up, before requests; none: nothing is audited).
  void set_audit_log(AuditLog* audit);
  KeyArchive* key_archive() const { return key_archive_; }
  const InstanceConfig& config() const { return config_; }

 private:
  struct Issued {
    store::CertificateRecord record;
    std::string certificate_pem;
  };

  CertificateAuthority(const InstanceConfig& config, store::CaStore& store);
  Result<std::string> next_serial_hex();
  Result<Profile> find_profile(const std::string& profile_id);
  // Numbers and signs a certificate for an accepted plan (nothing stored yet).
  Result<Issued> sign(const Profile& profile, const IssuancePlan& plan, const crypto::ParsedCsr& csr,
                      const std::string& request_id_hex, std::chrono::system_clock::time_point now);
  // Spends a checked code (cluster-wide claim, then the local record); the claim to give back if
  // the enrollment fails.
  [[nodiscard]] Result<std::optional<HeldClaim>> spend_enrollment_code(const std::string& code_id,
                                                                       const std::string& request_id);
  // Who may have it: the profile's authenticators (authenticators_), strongest evidence first;
  // then issue or queue.
  // `type`: "enrollment" (csr.der is a PKCS#10 request) or "renewal" (csr.der is the old certificate).
  // A key to archive with the certificate (and return as PKCS#12 when the CA generated it).
  struct Archival {
    ossl::UniquePtr<EVP_PKEY> key;
    std::string how;              // "server-side key generation", "client envelope"
    std::string pkcs12_password;  // non-empty: return the key as PKCS#12
    bool return_pkcs8 = false;    // return the key as PKCS#8 DER (EST serverkeygen)
  };
  void authorize(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                 const EnrollmentInput& input, const std::string& type, EnrollmentCallback done,
                 const std::shared_ptr<Archival>& archival = nullptr);
  // The key and CSR of server-side key generation.
  Result<std::string> generate_for(const Profile& profile, EnrollmentInput& input, std::shared_ptr<Archival>& archival);
  void store_pending(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                     std::string requester, const std::string& type, EnrollmentCallback done);
  // The request entry of a certificate issued at once (without its secret and requester).
  store::RequestRecord issued_request_record(const std::string& request_id, const std::string& type,
                                             const Profile& profile, const crypto::ParsedCsr& csr,
                                             const store::CertificateRecord& issued,
                                             std::chrono::system_clock::time_point now) const;
  // The archived key handed back as asked: PKCS#12 with the CA certificate, and/or PKCS#8.
  Status add_key_packages(const Archival& archival, const Issued& issued, EnrollmentResult& result) const;
  void issue_now(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                 const std::string& requester, const std::string& code_id, std::string authenticated_by,
                 const std::string& type, EnrollmentCallback done, const std::shared_ptr<Archival>& archival = nullptr);
  Result<CreatedEnrollmentCode> make_enrollment_code(const EnrollmentCodeSpec& spec, const AgentIdentity& agent);
  // An earlier request with exactly this CSR under this profile, answered as a submission would be.
  // False when there is none (the caller goes on with a new request).
  bool answer_repeat(const Profile& profile, const crypto::ParsedCsr& csr, EnrollmentCallback& done);
  // What a stored request asks for: its PKCS#10 request, or for a renewal the old certificate's.
  Result<crypto::ParsedCsr> requested(const store::RequestRecord& request);
  void finish_read(store::RequestRecord request, const std::function<void(Result<RequestView>)>& done);
  Status check_decider(const Profile& profile, const AgentIdentity& decider) const;
  Status check_approver(const Profile& profile, const store::RequestRecord& request, const crypto::ParsedCsr& csr,
                        const std::string& issued_subject, const AgentIdentity& approver);
  // approved -> complete for a request this instance received.
  void issue_approved(const store::RequestRecord& request, EnrollmentCallback done);
  // Audit: a record on disk before the caller goes on (blocking), or before `answer` runs (on the
  // audit log's thread: for store callbacks, which must not wait for the disk; main flushes the
  // log after stopping the store writer, before the server goes).
  void audit(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome) const;
  void audit_then(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome,
                  std::function<void()> answer) const;
  // `done`, recording a refusal (`event`) before it is answered; successes are recorded where they happen.
  // A caller without a certificate (anonymous, or an enrollment code not yet checked) is not
  // recorded one refusal at a time but counted (refusals_) under its address.
  EnrollmentCallback audit_refusals(std::string event, std::string who, std::string what, bool caller_authenticated,
                                    std::string client_address, EnrollmentCallback done) const;

  InstanceConfig config_;
  store::CaStore& store_;
  crypto::KeyQualityPolicy key_policy_;
  std::unique_ptr<AgentAuthenticator> agents_;
  std::unique_ptr<AgentAuthenticator> administrators_;
  std::unique_ptr<AgentAuthenticator> auditors_;
  std::optional<EnrollmentAuthenticators> authenticators_;  // set by open()
  KeyArchive* key_archive_ = nullptr;
  SingleUseClaims* claims_ = nullptr;
  AuditLog* audit_ = nullptr;
  std::unique_ptr<RefusalSummary> refusals_;
  std::optional<crypto::Issuer> issuer_;  // set by open()
  std::string ca_cert_pem_;
  std::string ca_subject_;
  std::chrono::system_clock::time_point ca_not_after_ = std::chrono::system_clock::time_point::max();
  std::unique_ptr<RangeAllocator> serials_;
  std::unique_ptr<RangeAllocator> requests_;
  mutable std::shared_mutex profiles_mutex_;
  std::map<std::string, Profile> profiles_;
  std::atomic<std::chrono::steady_clock::rep> last_profile_reload_{0};
};

// Persists both allocators' ranges in the replica entry of this instance.
Status persist_counters(store::CaStore& store, const InstanceConfig& config, const RangeAllocator* serials,
                        const RangeAllocator& requests);

}  // namespace ca::authority
