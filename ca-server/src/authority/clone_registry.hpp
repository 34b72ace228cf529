#pragma once
// The master's side of cloning: handing out replica IDs and replication accounts to new clones,
// adding the agreement through which this directory consumes from a clone, and retiring clones.
// Called through the admin endpoints, which require the subsystem certificate (mTLS).
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "store/ca_store.hpp"
#include "store/replication.hpp"

namespace ca::authority {

struct CloneRegistration {
  int replica_id = 0;
  std::string instance_id;
  std::string suffix;
  std::string replication_bind_dn;   // the clone's own account...
  std::string replication_password;  // ...and its password (new on every registration)
  std::string master_directory_url;  // where the clone's directory consumes from
  int master_replica_id = 0;
  std::string master_instance_id;
};

struct TopologyMember {
  store::ReplicaRecord replica;
  bool agreement = false;  // this directory consumes from it
  std::string directory_url;
};

class CloneRegistry {
 public:
  // `tree`: this instance's directory; `config_admin`: its cn=config (embedded directory only).
  CloneRegistry(const InstanceConfig& config, store::CaStore& store, store::LdapEndpoint tree,
                std::optional<store::LdapEndpoint> config_admin);

  // Idempotent per instance ID: a clone that registers again (a re-run of spawn) keeps its replica
  // ID and gets a fresh password. A retired ID is never handed out again.
  Result<CloneRegistration> register_clone(const std::string& instance_id, const std::string& url);
  // This directory starts consuming from the clone's directory at `directory_url`.
  Status connect_clone(int replica_id, const std::string& directory_url);
  // Marks the clone retired, drops the agreement with it and its replication account.
  Status retire_clone(int replica_id);
  Result<std::vector<TopologyMember>> topology();

 private:
  Result<std::string> own_replication_password();
  Result<std::unique_ptr<store::LdapConnection>> open_tree() const;

  const InstanceConfig& config_;
  store::CaStore& store_;
  store::LdapEndpoint tree_;
  std::optional<store::LdapEndpoint> config_admin_;
  // One topology change at a time: agreements are rewritten as a whole list in cn=config, and a
  // registration reads the replicas before it claims an ID.
  std::mutex changes_mutex_;
};

}  // namespace ca::authority
