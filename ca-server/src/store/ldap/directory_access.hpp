#pragma once
// Who may do what in a CA directory: the olcAccess rules of its database, set at creation and
// brought up to date at every start (a directory made by an earlier version gets the same rules).
//
// - The directory's own tools (root DN, and this OS user over the unix socket) manage everything.
// - The directory peers (members of `cn=Directory Peers,ou=groups`, store/replication.hpp): the
//   directories that replicate from this one, each by its own TLS certificate. They read every
//   entry whole: syncrepl sends a consumer only what its bind identity may read, and every
//   directory needs every entry, including the password hashes of the accounts (to verify their
//   binds) and the hashes of codes, request secrets and join tokens (to verify them wherever they
//   are used). They write nothing.
// - The replication accounts (`ou=replicators`, what ca-server binds with in its peers'
//   directories) read everything but the secrets: no userPassword (their own neither), no
//   caSecretHash, no caWrappedPrivateKey.
// - They write only claim entries (`caIdempotencyClaim`) under ou=idempotencyKeys and
//   ou=singleUseClaims: they may add one, and modify or delete one whose last writer
//   (modifiersName) they are. The claim protocols hand a claim over in two states, and only the
//   attributes of the hand-over may be written by another account then: a given-back
//   (`released`) single-use claim, and a `pending` Idempotency-Key claim (a stale one is taken over;
//   the ACL cannot see the time, so every pending one can be). The hand-over makes the new holder
//   the last writer, hence the owner.
// - Nothing else: not certificates, requests, groups, ranges, replica entries, CRLs.
// - Anonymous: only a bind (`auth` on userPassword).
#include <string>
#include <vector>

#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

// The group of identities that may read every entry whole (hashes included): the directories that
// replicate from this one. A groupOfNames whose members are certificate subjects (or, for a plain
// agreement, account DNs); store/replication.hpp adds and removes them.
std::string directory_peers_dn(const std::string& suffix);

// The rules, in order, without the "{n}" prefixes slapd adds. `local_admin_dn` is the identity
// that manages the directory besides the root DN (the peercred DN of this OS user over ldapi).
std::vector<std::string> directory_access_rules(const std::string& suffix, const std::string& local_admin_dn);

// The olcLimits of the database: no size or time limit for the root DN, the replication accounts
// and the directory peers (a refresh sends the whole tree).
std::vector<std::string> directory_limits(const std::string& suffix, const std::string& root_dn);

// Replaces the olcAccess of `database` (e.g. "olcDatabase={1}mdb,cn=config") by `rules` unless it
// holds exactly them already; `config` is a cn=config admin connection. Returns whether it changed.
[[nodiscard]] Result<bool> apply_directory_access(LdapConnection& config, const std::string& database,
                                                  const std::vector<std::string>& rules);
// The same for olcLimits.
[[nodiscard]] Result<bool> apply_directory_limits(LdapConnection& config, const std::string& database,
                                                  const std::vector<std::string>& limits);

}  // namespace ca::store
