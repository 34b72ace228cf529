#pragma once
// The directory of an instance, opened for a ca-clone command that reads or writes through it:
// the running instance's own (its embedded slapd over the unix socket, or the external directory).
// Nothing is started here: these commands look at, or act on, a running topology.
#include <memory>
#include <string>

#include "core/config.hpp"
#include "core/error.hpp"
#include "store/ldap/ldap_ca_store.hpp"

namespace ca::clone_tools {

struct RunningInstanceStore {
  store::LdapEndpoint endpoint;
  std::string password;  // the directory password (an embedded directory's cn=config takes it too)
  std::unique_ptr<store::LdapCaStore> store;
};

// Reads the bind password and builds the store; connects on first use (a directory that is down
// shows as an error of the first read).
[[nodiscard]] Result<RunningInstanceStore> open_running_instance_store(const InstanceConfig& config,
                                                                       int timeout_ms = 5000);

}  // namespace ca::clone_tools
