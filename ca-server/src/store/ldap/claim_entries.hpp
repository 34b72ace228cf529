#pragma once
// Claim records <-> directory entries (caIdempotencyClaim, the claim class of every kind: the
// schema of directories made by earlier versions has it). Pure functions: unit tests need no slapd.
#include <string>
#include <string_view>
#include <vector>

#include "store/claim_store.hpp"
#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

// cn=<name>,ou=singleUseClaims,<suffix> or cn=<key hash>,ou=idempotencyKeys,<suffix>.
std::string claim_dn(std::string_view suffix, const ClaimId& id);
// The containers of claims under `suffix`, every kind.
std::vector<std::string> claim_containers(std::string_view suffix);
std::vector<LdapAttribute> claim_attributes(const ClaimRecord& claim);
// The record of entry `entry` read for `id`: directory error when it lacks a field or holds a bad time.
Result<ClaimRecord> claim_from_entry(const ClaimId& id, const LdapEntry& entry);
// The compare-and-set modify of swap_claim_nonce.
std::vector<LdapModification> claim_nonce_swap(std::string_view nonce, std::string_view new_nonce,
                                               const ClaimChange& change);
// The claims expired at `now` (generalized time compared as a string: both are UTC, fixed width).
std::string expired_claims_filter(TimePoint now);

}  // namespace ca::store
