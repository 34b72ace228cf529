#pragma once
// Multi-provider replication between the directories of CA instances (RFC 4533 syncrepl, as
// slapd implements it):
//
// - Every directory consumes from its peers with one `olcSyncrepl` per peer (rid = the peer's
//   replica ID) and `olcMultiProvider: TRUE`. Over ldaps:// (every agreement ca-server makes) it
//   authenticates with its own TLS certificate (SASL EXTERNAL): the identity is that certificate's
//   subject, "CN=Directory <instance id>,<the CA's O...>", and it reads everything, password and
//   secret hashes included, only while that subject is a member of the directory peers group
//   (`cn=Directory Peers,ou=groups,<suffix>`). Registration adds a clone's directory there,
//   retirement removes it, and every instance keeps its own in at start.
// - Every instance also has an account `cn=replica-<id>,ou=replicators,<suffix>` with its own
//   random password, which ca-server uses in its peers' directories (claims, lag checks, status).
//   It reads everything but the hashes and writes only its own claim entries (directory_access.hpp).
//   Nobody ever needs another instance's directory admin password.
// - A plain ldap:// agreement (tests, or an operator's own) binds with such an account; it carries
//   the hashes only if the operator makes that account a directory peer.
//
// These functions work on a running slapd: the tree through a normal connection, cn=config through
// the config admin of an embedded directory (EmbeddedDirectory::config_endpoint).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "store/ldap/directory_access.hpp"
#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

struct ReplicationPeer {
  int replica_id = 0;        // the peer's; becomes the agreement's rid (1..999)
  std::string provider_url;  // ldaps://host:port/ of the peer's directory (ldap:// only in tests)
  std::string bind_dn;       // our account, as known in the peer's directory
  std::string password;      // crosses only TLS with an ldaps:// provider
  std::string tls_ca_file;   // ldaps: the peer's certificate must chain to this CA and name its host
  // ldaps: our directory's certificate and key; set, the agreement binds with them (SASL
  // EXTERNAL) instead of bind_dn and password.
  std::string tls_cert_file;
  std::string tls_key_file;
  bool binds_with_certificate() const { return !tls_cert_file.empty(); }
};

// The directory peers (directory_access.hpp: directory_peers_dn): the directories that replicate
// from this one, by their certificates' subjects (or, for a plain agreement, account DNs).
// Adds `member` (a DN) to the group, creating the group if it is missing; no-op when present.
Status add_directory_peer(LdapConnection& conn, const std::string& suffix, const std::string& member);
// Removes `member`; no-op when absent. The group goes when its last member does.
Status remove_directory_peer(LdapConnection& conn, const std::string& suffix, const std::string& member);
// The members, as stored.
Result<std::vector<std::string>> directory_peers(LdapConnection& conn, const std::string& suffix);

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
// Every ldaps:// agreement that does not bind with this certificate and key (one made by an
// earlier version with a password, or with a certificate since renewed under another path) is
// rewritten to bind with them. Returns how many were.
Result<int> bind_agreements_with_certificate(const LdapEndpoint& config, const std::string& cert_file,
                                             const std::string& key_file, const std::string& suffix);

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
