#pragma once
// The key recovery authority of an instance (Dogtag's KRA, folded into the CA): seals keys for
// the key repository with the storage key, opens the envelopes clients send to the transport
// certificate, and runs recovery: an agent asks (on any instance), distinct agents approve (each
// approval a compare-and-set), the asking agent retrieves a PKCS#12 once. Every step is audited.
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "authority/audit/audit_log.hpp"
#include "authority/cluster/single_use_claims.hpp"
#include "authority/revocation/revocation.hpp"
#include "core/config.hpp"
#include "core/openssl_owners.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

class KeyArchive {
 public:
  // Loads kra_storage and kra_transport from the instance folder. An instance made before key
  // archival has neither: the archive is then disabled (every call answers 503 saying so) until
  // `ca-server init` (or a clone's spawn from a bundle that holds them) adds them.
  static Result<std::unique_ptr<KeyArchive>> open(const InstanceConfig& config, store::CaStore& store,
                                                  X509* ca_certificate, AuditLog& audit);

  bool enabled() const { return storage_key_ != nullptr; }
  // Where a retrieval is spent cluster-wide (the recovery's home directory); without it only this
  // directory's compare-and-set (approved -> retrieved) guards it.
  void set_single_use_claims(SingleUseClaims* claims) { claims_ = claims; }
  std::string transport_certificate_pem() const;

  // A record for `key` (not yet stored): its sealed form is bound to the key id, the certificate
  // serial and the owner. `how` says how it came (audited).
  Result<store::KeyRecord> seal(EVP_PKEY* key, const std::string& serial_hex, const std::string& owner,
                                const std::string& request_id_hex, const std::string& how);
  // The key a client sent in a CMS envelope to our transport certificate.
  Result<ossl::UniquePtr<EVP_PKEY>> open_envelope(std::string_view envelope);
  void audit(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome) {
    audit_.record(event, who, what, outcome);
  }

  // Recovery. `approvals_required`: from the profile the certificate was issued under.
  Result<store::RecoveryRecord> request_recovery(std::string_view serial_hex, const AgentIdentity& agent,
                                                 int approvals_required);
  Result<store::RecoveryRecord> approve(std::string_view id, const AgentIdentity& agent);
  Result<store::RecoveryRecord> reject(std::string_view id, const AgentIdentity& agent, std::string_view reason);
  Result<store::RecoveryRecord> find(std::string_view id);
  Result<std::vector<store::RecoveryRecord>> list(std::string_view state);
  // For the agent who asked, once approved: the key and its certificate (and the CA's) as PKCS#12
  // under `password`. The record is marked retrieved only after the key opened; a tampered record
  // fails and changes nothing. Once in the whole cluster: the retrieval is claimed in the
  // recovery's home directory first (refused, 503, while that home cannot be reached).
  // `received_at`: when the request arrived. A retrieval that could not be completed within the
  // request's time bound (server.request_timeout_ms, less a margin) hands nothing out and leaves
  // the recovery approved (the transport has answered 503 by then; a key marked retrieved but never
  // delivered would be lost).
  Result<std::vector<uint8_t>> retrieve(
      std::string_view id, const AgentIdentity& agent, std::string_view password,
      std::chrono::system_clock::time_point received_at = std::chrono::system_clock::now());

  // The key as stored, opened (tests and the recovery path).
  Result<ossl::UniquePtr<EVP_PKEY>> unseal(const store::KeyRecord& record);

 private:
  KeyArchive(store::CaStore& store, X509* ca_certificate, AuditLog& audit)
      : store_(store), ca_cert_(ca_certificate), audit_(audit) {}
  Status check_enabled() const;
  // A pending recovery whose distinct approvers reach the number (approvals that crossed in
  // replication) moves to approved; returns the record as it is now.
  Result<store::RecoveryRecord> complete_if_enough(const store::RecoveryRecord& r);
  // The cluster-wide claim on a retrieval (none without claims); conflict when it was taken.
  Result<std::optional<HeldClaim>> claim_retrieval(const store::RecoveryRecord& r);
  // approved -> retrieved, while the request's time bound allows the package to reach the agent.
  Status mark_retrieved(const store::RecoveryRecord& r, const AgentIdentity& agent,
                        std::chrono::system_clock::time_point received_at);
  // Approvals count people: the (lowercased) subject DN behind each approving certificate.
  std::string identity_of_member(std::string_view member);
  std::set<std::string> approver_identities(const store::RecoveryRecord& r);

  store::CaStore& store_;
  X509* ca_cert_;
  AuditLog& audit_;
  SingleUseClaims* claims_ = nullptr;
  std::chrono::milliseconds answer_within_{0};  // server.request_timeout_ms (0: unbounded)
  static constexpr std::chrono::milliseconds kAnswerMargin{300};
  std::string instance_id_;
  ossl::UniquePtr<EVP_PKEY> storage_key_;
  ossl::UniquePtr<X509> transport_cert_;
  ossl::UniquePtr<EVP_PKEY> transport_key_;
};

// What binds a sealed key to its record: "<key id>|<serial hex>|<owner>".
std::string key_record_binding(const store::KeyRecord& record);

}  // namespace ca::authority
