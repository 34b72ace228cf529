#include "authority/clone_registry.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "core/log.hpp"
#include "authority/instance_setup.hpp"
#include "crypto/pem.hpp"
#include "store/embedded_directory.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "clones";
}

CloneRegistry::CloneRegistry(const InstanceConfig& config, store::CaStore& store, store::LdapEndpoint tree,
                             std::optional<store::LdapEndpoint> config_admin)
    : config_(config), store_(store), tree_(std::move(tree)), config_admin_(std::move(config_admin)) {}

Result<std::unique_ptr<store::LdapConnection>> CloneRegistry::open_tree() const { return store::LdapConnection::open(tree_); }

// This instance's replication password: <dir>/secrets/replication.pass, made on first use; its
// account is written when the password is new or the account is missing (not on every call: that
// would be a replicated write per registration).
Result<std::string> CloneRegistry::own_replication_password() {
  auto file = config_.dir / "secrets" / "replication.pass";
  std::string password;
  bool made = false;
  if (std::filesystem::exists(file)) {
    CA_TRY(password, read_secret_file(file));
  } else {
    password = store::random_password(32);
    CA_CHECK(crypto::write_text_file_atomic(file, password, 0600));
    made = true;
    log::info(kLog, "generated this instance's replication password in {}", file.string());
  }
  CA_TRY(auto conn, open_tree());
  CA_TRY(auto account, conn->read(store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id), {"cn"}));
  if (made || !account)
    CA_CHECK(store::put_replication_account(*conn, config_.directory.suffix, config_.ranges.replica_id, password));
  return password;
}

Result<CloneRegistration> CloneRegistry::register_clone(const std::string& instance_id, const std::string& url) {
  if (instance_id.empty()) return fail(Error::bad_request("the clone's instance_id is empty"));
  std::lock_guard changing(changes_mutex_);
  if (instance_id == config_.instance_id)
    return fail(Error::conflict(fmt::format("instance ID '{}' is this master's own", instance_id)));
  std::string master_url = config_.directory.mode == DirectoryMode::external
                               ? config_.directory.url
                               : (config_.directory.port ? fmt::format("ldap://{}:{}/", config_.directory.listen_address,
                                                                       config_.directory.port)
                                                         : std::string());
  if (master_url.empty())
    return fail(Error::conflict(
        "this instance's directory listens on a unix socket only; set directory.port (and listen_address) so that "
        "clones can replicate from it, then restart ca-server"));

  CA_TRY(auto replicas, store_.list_replicas());
  std::optional<store::ReplicaRecord> existing;
  for (const auto& r : replicas)
    if (r.instance_id == instance_id && !r.retired) existing = r;
  int replica_id;
  if (existing) {
    replica_id = existing->replica_id;
    log::info(kLog, "clone '{}' registers again: keeps replica ID {}", instance_id, replica_id);
  } else {
    CA_TRY(auto claimed, store_.claim_range(store::RangeKind::replica, 1, 1, config_.ranges.replica_id, instance_id));
    replica_id = static_cast<int>(claimed.begin);
    if (replica_id > 999)
      return fail(Error::conflict(fmt::format("replica ID {} is above 999, the most replication agreements allow", replica_id)));
    store::ReplicaRecord record;
    record.replica_id = replica_id;
    record.instance_id = instance_id;
    record.url = url;
    CA_CHECK(store_.save_replica(record));
    log::info(kLog, "clone '{}' ({}) gets replica ID {}", instance_id, url, replica_id);
  }
  CA_TRY(std::string own_password, own_replication_password());
  (void)own_password;  // made sure the master's own account exists: the clone's agreement binds to it
  CloneRegistration reg;
  reg.replica_id = replica_id;
  reg.instance_id = instance_id;
  reg.suffix = config_.directory.suffix;
  reg.replication_bind_dn = store::replication_account_dn(config_.directory.suffix, replica_id);
  reg.replication_password = store::random_password(32);
  reg.master_directory_url = master_url;
  reg.master_replica_id = config_.ranges.replica_id;
  reg.master_instance_id = config_.instance_id;
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::put_replication_account(*conn, config_.directory.suffix, replica_id, reg.replication_password));
  return reg;
}

Status CloneRegistry::connect_clone(int replica_id, const std::string& directory_url) {
  if (!config_admin_)
    return fail(Error::conflict("this instance's directory is external: set up its replication agreements yourself"));
  if (directory_url.rfind("ldap://", 0) != 0 && directory_url.rfind("ldaps://", 0) != 0)
    return fail(Error::bad_request(fmt::format("directory_url '{}' is not an ldap:// or ldaps:// URL", directory_url)));
  std::lock_guard changing(changes_mutex_);
  CA_TRY(auto replica, store_.load_replica(replica_id));
  if (!replica) return fail(Error::not_found(fmt::format("no clone with replica ID {} is registered", replica_id)));
  if (replica->retired) return fail(Error::conflict(fmt::format("replica {} was retired", replica_id)));
  if (replica_id == config_.ranges.replica_id) return fail(Error::conflict("that is this instance's own replica ID"));
  CA_TRY(std::string password, own_replication_password());
  store::ReplicationPeer peer{replica_id, directory_url,
                              store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id), password};
  CA_CHECK(store::put_replication_peer(*config_admin_, peer, config_.directory.suffix));
  return ok();
}

Status CloneRegistry::retire_clone(int replica_id) {
  if (replica_id == config_.ranges.replica_id) return fail(Error::conflict("an instance cannot retire itself here"));
  std::lock_guard changing(changes_mutex_);
  CA_TRY(auto replica, store_.load_replica(replica_id));
  if (!replica) return fail(Error::not_found(fmt::format("no clone with replica ID {} is registered", replica_id)));
  if (config_admin_) {
    CA_TRY(bool had_agreement, store::remove_replication_peer(*config_admin_, replica_id, config_.directory.suffix));
    (void)had_agreement;
  }
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::remove_replication_account(*conn, config_.directory.suffix, replica_id));
  if (!replica->retired) {
    replica->retired = true;
    CA_CHECK(store_.save_replica(*replica));
  }
  log::info(kLog, "retired replica {} ('{}'); its ID will not be handed out again", replica_id, replica->instance_id);
  return ok();
}

Result<std::vector<TopologyMember>> CloneRegistry::topology() {
  CA_TRY(auto replicas, store_.list_replicas());
  std::vector<store::ReplicationPeer> peers;
  if (config_admin_) {
    CA_TRY(auto found, store::replication_peers(*config_admin_));
    peers = std::move(found);
  }
  std::vector<TopologyMember> out;
  for (auto& r : replicas) {
    TopologyMember m;
    m.replica = r;
    for (const auto& p : peers)
      if (p.replica_id == r.replica_id) {
        m.agreement = true;
        m.directory_url = p.provider_url;
      }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace ca::authority
