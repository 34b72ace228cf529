#pragma once
// Revocation by agents: who may (a TLS client certificate of this CA, valid and not revoked now,
// that is itself a member of the agents group in the directory) and what (RFC 5280 reasons; only
// certificateHold can be undone).
#include <optional>
#include <string>

#include "authority/access/presented_certificate.hpp"
#include "authority/access/roles.hpp"
#include "authority/audit/audit_log.hpp"
#include "authority/revocation/crl_publisher.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

// A role holder (agent, administrator or auditor) as authenticated for one request.
struct AgentIdentity {
  std::string subject_dn;
  std::string serial_hex;
  std::string member_value;  // how the role's group names the certificate
  std::string role = std::string(kAgentRole.name);
  // "CN=...,O=... (0x<serial>)": recorded with every agent action.
  std::string display() const;
  // The person: the subject DN. Two certificates with one subject are one identity.
  const std::string& identity() const { return subject_dn; }
  // "<role> <display>": how a request made by this holder names its requester.
  std::string requester() const;
};

// RFC 5280 reason names (keyCompromise, certificateHold, ...) to codes; bad_request otherwise.
Result<int> parse_revocation_reason(std::string_view name);
std::string_view revocation_reason_name(int code);

// Authenticates the holders of one role (the agents by default).
class AgentAuthenticator {
 public:
  AgentAuthenticator(store::CaStore& store, X509* ca_cert, Role role = kAgentRole)
      : store_(store), ca_cert_(ca_cert), role_(role) {}
  const Role& role() const { return role_; }
  // Checked at every request: 401 without a client certificate; 403 for a certificate of another
  // CA, an expired or revoked one (also on a resumed TLS session), or one that is not itself in
  // the agents group (a certificate with an agent's name is not an agent). With an audit log, the
  // call (what the agent asks for, e.g. "POST /ca/rest/agent/certs/{serial}/revoke") is recorded,
  // and so is a presented certificate refused as an agent's.
  Result<AgentIdentity> authenticate(const crypto::PeerCertificate& peer, std::string_view call = {});
  // The same check, answering false instead of 401/403 (for endpoints open to others too).
  Result<std::optional<AgentIdentity>> identify(const crypto::PeerCertificate& peer);
  // Set once at start-up, before requests.
  void set_audit_log(AuditLog* audit) { audit_ = audit; }

 private:
  Result<AgentIdentity> check(const crypto::PeerCertificate& peer);

  store::CaStore& store_;
  X509* ca_cert_;
  Role role_;
  AuditLog* audit_ = nullptr;
};

class RevocationService {
 public:
  RevocationService(store::CaStore& store, CrlPublisher* publisher) : store_(store), publisher_(publisher) {}
  // Every revocation and unrevocation, done or refused, is recorded here (set once at start-up).
  void set_audit_log(AuditLog* audit) { audit_ = audit; }
  // invalidity_date: RFC 3339 ("2026-11-20T10:00:00Z") or empty.
  Result<store::CertificateRecord> revoke(std::string_view serial_hex, std::string_view reason,
                                          std::string_view invalidity_date, const AgentIdentity& agent);
  Result<store::CertificateRecord> unrevoke(std::string_view serial_hex, const AgentIdentity& agent);

 private:
  Result<store::CertificateRecord> revoke_now(std::string_view serial_hex, std::string_view reason,
                                              std::string_view invalidity_date, const AgentIdentity& agent);
  Result<store::CertificateRecord> unrevoke_now(std::string_view serial_hex, const AgentIdentity& agent);

  store::CaStore& store_;
  CrlPublisher* publisher_;
  AuditLog* audit_ = nullptr;
};

Result<store::TimePoint> parse_rfc3339(std::string_view text);

}  // namespace ca::authority
