#pragma once
// Instance-to-instance administration (cloning), authenticated with the subsystem certificate
// that every instance of one CA shares (it travels in the clone bundle):
//   POST   /ca/rest/admin/clones                       {"instance_id", "url"} -> 201 registration
//   POST   /ca/rest/admin/clones/{replica_id}/replication {"directory_url"}   -> 200
//   DELETE /ca/rest/admin/clones/{replica_id}                                 -> 200 (retired)
//   GET    /ca/rest/admin/topology                                            -> 200 instances
#include <string>

#include "authority/clone_registry.hpp"
#include "http/router.hpp"

namespace ca::http {

// Accepts only a TLS client certificate that is byte for byte this CA's subsystem certificate.
class SubsystemAuthenticator {
 public:
  // `subsystem_pem`: crypto::certificate_to_pem of the subsystem certificate, as the server
  // encodes the verified client certificate.
  explicit SubsystemAuthenticator(std::string subsystem_pem) : subsystem_pem_(std::move(subsystem_pem)) {}
  Status authenticate(const std::string& peer_certificate_pem) const;

 private:
  std::string subsystem_pem_;
};

void register_admin_endpoints(Router& router, const SubsystemAuthenticator& auth, authority::CloneRegistry& clones);

}  // namespace ca::http
