#pragma once
// Multi-provider replication between the directories of CA instances (RFC 4533 syncrepl, as
// slapd implements it):
//
// - Every instance has a replication account `cn=replica-<id>,ou=replicators,<suffix>` with its own
//   random password. The accounts live in the replicated tree, so every directory knows every
//   account, and the access rules (directory_access.hpp) give `ou=replicators` read access to
//   everything and write access to their own claim entries only. Nobody ever needs another
//   instance's directory admin password.
// - Each directory consumes from its peers with one `olcSyncrepl` per peer (rid = the peer's replica
//   ID), bound as *its own* account, and `olcMultiProvider: TRUE`.
//
// These functions work on a running slapd: the tree through a normal connection, cn=config through
// the config admin of an embedded directory (EmbeddedDirectory::config_endpoint).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/ldap_connection.hpp"

namespace ca::store {

struct ReplicationPeer {
  int replica_id = 0;        // the peer's; becomes the agreement's rid (1..999)
  std::string provider_url;  // ldaps://host:port/ of the peer's directory (ldap:// only in tests)
  std::string bind_dn;       // our account, as known in the peer's directory
  std::string password;      // crosses only TLS with an ldaps:// provider
  std::string tls_ca_file;   // ldaps: the peer's certificate must chain to this CA and name its host
};

std::string replication_account_dn(const std::string& suffix, int replica_id);

// Creates or re-keys the replication account of `replica_id` (the password stored as {SSHA}).
Status put_replication_account(LdapConnection& conn, const std::string& suffix, int replica_id,
                               const std::string& password);
Status remove_replication_account(LdapConnection& conn, const std::string& suffix, int replica_id);

// The olcSyncrepl value for one peer.
std::string syncrepl_value(const ReplicationPeer& peer, const std::string& suffix);

// Agreements configured on the directory reached through `config` (cn=config admin).
Result<std::vector<ReplicationPeer>> replication_peers(const LdapEndpoint& config);
// Adds or replaces the agreement with peer.replica_id (and turns on olcMultiProvider).
Status put_replication_peer(const LdapEndpoint& config, const ReplicationPeer& peer, const std::string& suffix);
// Removes the agreement with `replica_id`; returns whether there was one.
Result<bool> remove_replication_peer(const LdapEndpoint& config, int replica_id, const std::string& suffix);

// --- The replica registry's topology facts (in the replicated tree) ---
// The URL the other instances' directories replicate from: caDirectoryUrl of the instance's
// replica entry, written with one targeted modify (never the instance's counters).
Status set_directory_url(LdapConnection& conn, const std::string& suffix, int replica_id, const std::string& url);
// The instance that registers clones and assigns replica IDs (caRegistrar on the replica counter);
// nullopt when none was ever named.
Result<std::optional<std::string>> read_registrar(LdapConnection& conn, const std::string& suffix);
Status write_registrar(LdapConnection& conn, const std::string& suffix, const std::string& instance_id);
// The highest replica ID this directory knows of: the replica counter minus one, every replica
// entry and every claimed replica range.
Result<uint64_t> highest_replica_id_known(LdapConnection& conn, const std::string& suffix);
// Moves the replica counter (the next ID handed out) up to at least `next`, never down; returns
// its value afterwards.
Result<uint64_t> raise_replica_counter(LdapConnection& conn, const std::string& suffix, uint64_t next);

// contextCSN values of the suffix entry, by server ID (what each provider's changes have reached).
Result<std::map<int, std::string>> context_csns(LdapConnection& conn, const std::string& suffix);

}  // namespace ca::store
