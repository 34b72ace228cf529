#include "authority/access/instance_authenticator.hpp"

#include <fmt/format.h>

#include "authority/access/presented_certificate.hpp"
#include "store/records.hpp"

namespace ca::authority {

Result<store::ReplicaRecord> InstanceAuthenticator::authenticate(const crypto::PeerCertificate& peer,
                                                                 std::string_view call) {
  auto instance = check(peer);
  const std::string_view what = call.empty() ? std::string_view("an admin operation") : call;
  if (audit_ && instance)
    audit_->record("admin_call", fmt::format("instance '{}' (replica {})", instance->instance_id, instance->replica_id),
                   what, "authenticated");
  if (audit_ && !instance && instance.error().is(ErrorCode::forbidden))
    audit_->record("admin_refused", "a TLS client certificate", what, instance.error().message);
  return instance;
}

Result<store::ReplicaRecord> InstanceAuthenticator::check(const crypto::PeerCertificate& peer) {
  CA_TRY(auto presented,
         check_presented_certificate(store_, ca_certificate_, peer, "a CA instance (its subsystem certificate)"));
  CA_TRY(auto replicas, store_.list_replicas());
  const std::string serial = store::canonical_hex(presented.serial_hex);
  for (auto& r : replicas) {
    if (r.subsystem_serial.empty() || store::canonical_hex(r.subsystem_serial) != serial) continue;
    if (r.retired)
      return fail(Error::forbidden(
          fmt::format("instance '{}' (replica {}) was removed from the topology", r.instance_id, r.replica_id)));
    return std::move(r);
  }
  return fail(Error::forbidden(
      fmt::format("the certificate 0x{} ('{}') is not the subsystem certificate of a registered CA instance", serial,
                  presented.subject_dn)));
}

}  // namespace ca::authority
