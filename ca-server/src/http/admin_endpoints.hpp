#pragma once
// Instance-to-instance administration (cloning). Each instance calls with its own subsystem
// certificate, accepted only while it belongs to a registered, non-retired instance (checked at
// every request); a new clone registers once with a join token instead:
//   POST   /ca/rest/admin/clones  {"instance_id", "url", "subsystem_csr"?, "join_token"?} -> 201 registration
//   POST   /ca/rest/admin/clones/{replica_id}/replication {"directory_url"}   -> 200
//   DELETE /ca/rest/admin/clones/{replica_id}                                 -> 200 (retired)
//   GET    /ca/rest/admin/topology                                            -> 200 instances
#include <string>

#include "authority/clone_registry.hpp"
#include "authority/instance_authenticator.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_admin_endpoints(Router& router, authority::InstanceAuthenticator& instances,
                              authority::CloneRegistry& clones);

}  // namespace ca::http
