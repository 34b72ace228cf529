#include "store/ldap/claim_entries.hpp"

#include <fmt/format.h>

#include "store/ldap/ldap_escape.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kSingleUse = "ou=singleUseClaims";
constexpr std::string_view kIdempotencyKeys = "ou=idempotencyKeys";
using Op = LdapModification::Op;

Result<TimePoint> time_of(const ClaimId& id, const LdapEntry& entry, std::string_view attribute) {
  auto text = entry.first(attribute);
  if (!text) return fail(Error::directory(fmt::format("claim {} has no {}", id.name(), attribute)));
  auto t = from_generalized_time(*text);
  if (!t) return fail(Error::directory(fmt::format("claim {}: {} '{}' is not a time", id.name(), attribute, *text)));
  return *t;
}

Result<std::string> text_of(const ClaimId& id, const LdapEntry& entry, std::string_view attribute) {
  auto text = entry.first(attribute);
  if (!text) return fail(Error::directory(fmt::format("claim {} has no {}", id.name(), attribute)));
  return *text;
}
}  // namespace

std::string claim_dn(std::string_view suffix, const ClaimId& id) {
  if (id.container == ClaimContainer::idempotency_key)
    return fmt::format("cn={},{},{}", escape_dn_value(id.token), kIdempotencyKeys, suffix);
  return fmt::format("cn={}-{},{},{}", id.kind, escape_dn_value(id.token), kSingleUse, suffix);
}

std::vector<std::string> claim_containers(std::string_view suffix) {
  return {fmt::format("{},{}", kSingleUse, suffix), fmt::format("{},{}", kIdempotencyKeys, suffix)};
}

std::vector<LdapAttribute> claim_attributes(const ClaimRecord& claim) {
  std::vector<LdapAttribute> attrs{{"objectClass", {"caIdempotencyClaim"}},
                                   {"cn", {claim.id.name()}},
                                   {"caRequestDigest", {claim.digest}},
                                   {"caCodeState", {claim.state}},
                                   {"caClaimNonce", {claim.nonce}},
                                   {"caInstanceId", {claim.instance_id}},
                                   {"caCreatedAt", {to_generalized_time(claim.created_at)}},
                                   {"caExpiresAt", {to_generalized_time(claim.expires_at)}}};
  if (!claim.stored_response.empty()) attrs.push_back({"caStoredResponse", {claim.stored_response}});
  return attrs;
}

Result<ClaimRecord> claim_from_entry(const ClaimId& id, const LdapEntry& entry) {
  ClaimRecord claim;
  claim.id = id;
  claim.digest = entry.first_or("caRequestDigest");
  CA_TRY(claim.state, text_of(id, entry, "caCodeState"));
  CA_TRY(claim.nonce, text_of(id, entry, "caClaimNonce"));
  claim.instance_id = entry.first_or("caInstanceId");
  CA_TRY(claim.created_at, time_of(id, entry, "caCreatedAt"));
  CA_TRY(claim.expires_at, time_of(id, entry, "caExpiresAt"));
  claim.stored_response = entry.first_or("caStoredResponse");
  if (entry.first("caModifiedAt")) {
    CA_TRY(TimePoint modified, time_of(id, entry, "caModifiedAt"));
    claim.modified_at = modified;
  }
  return claim;
}

std::vector<LdapModification> claim_nonce_swap(std::string_view nonce, std::string_view new_nonce,
                                               const ClaimChange& change) {
  std::vector<LdapModification> mods{{Op::remove, "caClaimNonce", {std::string(nonce)}},
                                     {Op::add, "caClaimNonce", {std::string(new_nonce)}}};
  auto replace = [&](const char* attribute, std::string value) {
    mods.push_back({Op::replace, attribute, {std::move(value)}});
  };
  if (change.state) replace("caCodeState", *change.state);
  if (change.stored_response) replace("caStoredResponse", *change.stored_response);
  if (change.instance_id) replace("caInstanceId", *change.instance_id);
  if (change.created_at) replace("caCreatedAt", to_generalized_time(*change.created_at));
  if (change.expires_at) replace("caExpiresAt", to_generalized_time(*change.expires_at));
  if (change.modified_at) replace("caModifiedAt", to_generalized_time(*change.modified_at));
  return mods;
}

std::string expired_claims_filter(TimePoint now) {
  return fmt::format("(&(objectClass=caIdempotencyClaim)(caExpiresAt<={}))", to_generalized_time(now));
}

}  // namespace ca::store
