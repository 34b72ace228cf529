#pragma once
// Instance-to-instance calls (clone registration, replication set-up, topology, retirement):
// the caller presents its own subsystem certificate, and it counts only while the directory says
// it belongs to a registered instance that is not retired. Checked at every request, so a removed
// clone (whose certificates are also revoked) loses its rights on every instance the change
// reaches, including over a kept-alive or resumed TLS session.
#include <string>
#include <string_view>

#include "authority/audit/audit_log.hpp"
#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/peer_certificate.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

class InstanceAuthenticator {
 public:
  InstanceAuthenticator(store::CaStore& store, X509* ca_certificate) : store_(store), ca_certificate_(ca_certificate) {}
  // 401 without a certificate; 403 for anything but the subsystem certificate of a registered,
  // non-retired instance. Returns that instance's replica entry. With an audit log, the call
  // ("DELETE /ca/rest/admin/clones/{replica_id}") is recorded, and so is a refused certificate.
  Result<store::ReplicaRecord> authenticate(const crypto::PeerCertificate& peer, std::string_view call = {});
  // Set once at start-up, before requests.
  void set_audit_log(AuditLog* audit) { audit_ = audit; }

 private:
  Result<store::ReplicaRecord> check(const crypto::PeerCertificate& peer);

  store::CaStore& store_;
  X509* ca_certificate_;
  AuditLog* audit_ = nullptr;
};

}  // namespace ca::authority
