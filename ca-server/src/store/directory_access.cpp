#include "store/directory_access.hpp"

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "directory";

// slapd shows each value of an ordered attribute with its position, "{3}to ...".
std::string_view without_position(std::string_view rule) {
  if (!rule.empty() && rule.front() == '{')
    if (auto close = rule.find('}'); close != std::string_view::npos) return rule.substr(close + 1);
  return rule;
}
}  // namespace

std::vector<std::string> directory_access_rules(const std::string& suffix, const std::string& local_admin_dn) {
  const std::string admin = fmt::format("by dn.exact=\"{}\" manage", local_admin_dn);
  const std::string replicators = fmt::format("dn.children=\"ou=replicators,{}\"", suffix);
  const std::string keys = fmt::format("ou=idempotencyKeys,{}", suffix);
  const std::string claims = fmt::format("ou=singleUseClaims,{}", suffix);
  // The last writer of a claim owns it (see the header). slapd sets modifiersName on add too.
  const std::string owner = "by set=\"this/modifiersName & user\" write";
  return {
      fmt::format("to attrs=userPassword {} by {} read by anonymous auth by * none", admin, replicators),
      // Adding or deleting a claim: write on the container's children (and on the claim itself).
      fmt::format("to dn.base=\"{}\" attrs=children {} by {} write by * none", keys, admin, replicators),
      fmt::format("to dn.base=\"{}\" attrs=children {} by {} write by * none", claims, admin, replicators),
      // The hand-overs: a pending Idempotency-Key claim, a given-back single-use claim.
      fmt::format("to dn.one=\"{}\" filter=(&(objectClass=caIdempotencyClaim)(caCodeState=pending)) "
                  "attrs=caClaimNonce,caCreatedAt,caInstanceId by {} write by * break",
                  keys, replicators),
      fmt::format("to dn.one=\"{}\" filter=(&(objectClass=caIdempotencyClaim)(caCodeState=released)) "
                  "attrs=caClaimNonce,caCodeState,caInstanceId,caCreatedAt,caExpiresAt by {} write by * break",
                  claims, replicators),
      fmt::format("to dn.one=\"{}\" filter=(objectClass=caIdempotencyClaim) {} {} by {} read by * none", keys, admin,
                  owner, replicators),
      fmt::format("to dn.one=\"{}\" filter=(objectClass=caIdempotencyClaim) {} {} by {} read by * none", claims, admin,
                  owner, replicators),
      fmt::format("to * {} by {} read by * none", admin, replicators),
  };
}

Result<bool> apply_directory_access(LdapConnection& config, const std::string& database,
                                    const std::vector<std::string>& rules) {
  CA_TRY(auto entry, config.read(database, {"olcAccess"}));
  if (!entry) return fail(Error::directory(fmt::format("cn=config has no {}", database)));
  std::vector<std::string> current;
  if (const auto* values = entry->values("olcAccess"))
    for (const auto& v : *values) current.emplace_back(without_position(v));
  if (current == rules) return false;
  std::vector<std::string> numbered;
  for (std::size_t i = 0; i < rules.size(); ++i) numbered.push_back(fmt::format("{{{}}}{}", i, rules[i]));
  // One modify: slapd swaps the whole list at once, never leaving a directory half-guarded.
  CA_CHECK(config.modify(database, {LdapModification{LdapModification::Op::replace, "olcAccess", numbered}}));
  log::info(kLog, "set the access rules of {} ({} rules, {} before)", database, rules.size(), current.size());
  return true;
}

}  // namespace ca::store
