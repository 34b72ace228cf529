#pragma once
// Claims in one directory, through a pool of connections to it (store/ldap/claim_entries.hpp maps them).
#include <functional>
#include <memory>
#include <string>

#include "core/config.hpp"
#include "store/claim_store.hpp"
#include "store/ldap/ldap_pool.hpp"

namespace ca::store {

class LdapClaimStore : public ClaimStore {
 public:
  LdapClaimStore(std::shared_ptr<LdapPool> pool, std::string suffix);

  Status add_claim(const ClaimRecord& claim) override;
  Result<std::optional<ClaimRecord>> read_claim(const ClaimId& id) override;
  Status swap_claim_nonce(const ClaimId& id, std::string_view nonce, std::string_view new_nonce,
                          const ClaimChange& change) override;
  Status remove_claim(const ClaimId& id) override;
  Result<int> remove_expired_claims(TimePoint now) override;

  LdapPool& pool() { return *pool_; }

 private:
  std::shared_ptr<LdapPool> pool_;
  std::string suffix_;
};

// This instance's own directory (`local`, the admin bind), waiting at most `timeout_ms` for it.
std::shared_ptr<ClaimStore> open_local_claim_store(LdapEndpoint local, std::string suffix, int timeout_ms);
// The claims in another instance's directory (ldaps:// URL), bound with this instance's
// replication account (secrets/replication.pass), which may add claims there and write the ones
// it holds (store/ldap/directory_access.hpp); null when this instance has no such account yet.
using ClaimStoreOpener = std::function<std::shared_ptr<ClaimStore>(const std::string& url)>;
ClaimStoreOpener replication_claim_store_opener(const InstanceConfig& config, int timeout_ms);

}  // namespace ca::store
