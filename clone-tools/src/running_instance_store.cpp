#include "running_instance_store.hpp"

#include "authority/instance/instance_setup.hpp"
#include "store/ldap/directory_account.hpp"
#include "store/ldap/embedded_directory.hpp"

namespace ca::clone_tools {

Result<RunningInstanceStore> open_running_instance_store(const InstanceConfig& c, int timeout_ms) {
  RunningInstanceStore out;
  CA_TRY(out.password, read_secret_file(c.directory.bind_password_file));
  out.endpoint = store::LdapEndpoint{
      c.directory.mode == DirectoryMode::external ? c.directory.url : store::ldapi_url_for(c.slapd_dir() / "ldapi"),
      store::directory_bind_dn(c.directory), out.password, timeout_ms};
  // A tool's reads and a few small writes: one connection, one writer.
  store::GroupCommitOptions few_writes;
  few_writes.writers = 1;
  out.store = std::make_unique<store::LdapCaStore>(out.endpoint, c.directory.suffix, 1, few_writes);
  return out;
}

}  // namespace ca::clone_tools
