#include "store/ldap/ldap_claim_store.hpp"

#include "core/files.hpp"
#include "store/ldap/claim_entries.hpp"
#include "store/ldap/replication.hpp"

namespace ca::store {

LdapClaimStore::LdapClaimStore(std::shared_ptr<LdapPool> pool, std::string suffix)
    : pool_(std::move(pool)), suffix_(std::move(suffix)) {}

Status LdapClaimStore::add_claim(const ClaimRecord& claim) {
  const std::string dn = claim_dn(suffix_, claim.id);
  const auto attrs = claim_attributes(claim);
  return pool_->with_connection([&](LdapConnection& c) { return c.add(dn, attrs); });
}

Result<std::optional<ClaimRecord>> LdapClaimStore::read_claim(const ClaimId& id) {
  CA_TRY(auto entry, pool_->with_connection([&](LdapConnection& c) { return c.read(claim_dn(suffix_, id)); }));
  if (!entry) return std::optional<ClaimRecord>{};
  CA_TRY(ClaimRecord claim, claim_from_entry(id, *entry));
  return std::optional<ClaimRecord>(std::move(claim));
}

Status LdapClaimStore::swap_claim_nonce(const ClaimId& id, std::string_view nonce, std::string_view new_nonce,
                                        const ClaimChange& change) {
  const auto mods = claim_nonce_swap(nonce, new_nonce, change);
  return pool_->with_connection([&](LdapConnection& c) { return c.modify(claim_dn(suffix_, id), mods); });
}

Status LdapClaimStore::remove_claim(const ClaimId& id) {
  return pool_->with_connection([&](LdapConnection& c) { return c.remove(claim_dn(suffix_, id)); });
}

Result<int> LdapClaimStore::remove_expired_claims(TimePoint now) {
  const std::string filter = expired_claims_filter(now);
  int removed = 0;
  for (const std::string& base : claim_containers(suffix_)) {
    auto expired = pool_->with_connection([&](LdapConnection& c) {
      return c.search(base, SearchScope::one, filter, SearchOptions{{"cn"}, 500});
    });
    if (!expired) {
      if (expired.error().is(ErrorCode::not_found)) continue;  // a container not replicated here yet
      return fail(expired.error());
    }
    for (const auto& e : *expired) {
      Status st = pool_->with_connection([&](LdapConnection& c) { return c.remove(e.dn); });
      if (st) ++removed;
    }
  }
  return removed;
}

std::shared_ptr<ClaimStore> open_local_claim_store(LdapEndpoint local, std::string suffix, int timeout_ms) {
  local.timeout_ms = std::min(local.timeout_ms, timeout_ms);  // a claim never waits longer
  return std::make_shared<LdapClaimStore>(std::make_shared<LdapPool>(std::move(local), 4), std::move(suffix));
}

ClaimStoreOpener replication_claim_store_opener(const InstanceConfig& config, int timeout_ms) {
  const auto password_file = config.dir / "secrets" / "replication.pass";
  const std::string account = replication_account_dn(config.directory.suffix, config.ranges.replica_id);
  const std::string tls_ca = config.cert_file("ca_signing").string();
  const std::string suffix = config.directory.suffix;
  return [password_file, account, tls_ca, timeout_ms, suffix](const std::string& url) -> std::shared_ptr<ClaimStore> {
    auto password = read_secret_file(password_file);
    if (!password) return nullptr;
    auto pool = std::make_shared<LdapPool>(LdapEndpoint{url, account, *password, timeout_ms, tls_ca}, 4);
    return std::make_shared<LdapClaimStore>(std::move(pool), suffix);
  };
}

}  // namespace ca::store
