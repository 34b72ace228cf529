#pragma once
// Cluster administration over HTTPS. Who may call what (authority/instance/clone_registry.hpp):
// - an instance, with its own subsystem certificate (registered, non-retired, checked at every
//   request): the topology, and operations on itself only (registering again, its directory URL);
// - an administrator (caAdminCert, in the Administrators group): new clones, any instance's
//   directory URL, retirement;
// - a new clone, once, with a join token.
//   POST   /ca/rest/admin/clones  {"instance_id", "url", "subsystem_csr"?, "join_token"?} -> 201 registration
//   POST   /ca/rest/admin/clones/{replica_id}/replication {"directory_url"}   -> 200
//   DELETE /ca/rest/admin/clones/{replica_id}                                 -> 200 (retired)
//   GET    /ca/rest/admin/topology                                            -> 200 instances
// The bodies are the typed messages of api/admin_messages.hpp, which ca-clone uses too.
#include <string>

#include "authority/access/instance_authenticator.hpp"
#include "authority/instance/clone_registry.hpp"
#include "authority/revocation/revocation.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_admin_endpoints(Router& router, authority::InstanceAuthenticator& instances,
                              authority::AgentAuthenticator& administrators, authority::CloneRegistry& clones);

}  // namespace ca::http
