#include "store/ldap/directory_access.hpp"

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

std::string directory_peers_dn(const std::string& suffix) { return "cn=Directory Peers,ou=groups," + suffix; }

std::vector<std::string> directory_access_rules(const std::string& suffix, const std::string& local_admin_dn) {
  const std::string admin = fmt::format("by dn.exact=\"{}\" manage", local_admin_dn);
  const std::string replicators = fmt::format("dn.children=\"ou=replicators,{}\"", suffix);
  const std::string peers = fmt::format("by group/groupOfNames/member.exact=\"{}\" read", directory_peers_dn(suffix));
  const std::string keys = fmt::format("ou=idempotencyKeys,{}", suffix);
  const std::string claims = fmt::format("ou=singleUseClaims,{}", suffix);
  // The last writer of a claim owns it (see the header). slapd sets modifiersName on add too.
  const std::string owner = "by set=\"this/modifiersName & user\" write";
  return {
      fmt::format("to attrs=userPassword {} {} by anonymous auth by * none", admin, peers),
      fmt::format("to attrs=caSecretHash,caWrappedPrivateKey {} {} by * none", admin, peers),
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
      fmt::format("to dn.one=\"{}\" filter=(objectClass=caIdempotencyClaim) {} {} {} by {} read by * none", keys, admin,
                  owner, peers, replicators),
      fmt::format("to dn.one=\"{}\" filter=(objectClass=caIdempotencyClaim) {} {} {} by {} read by * none", claims,
                  admin, owner, peers, replicators),
      fmt::format("to * {} {} by {} read by * none", admin, peers, replicators),
  };
}

std::vector<std::string> directory_limits(const std::string& suffix, const std::string& root_dn) {
  const std::string unlimited = "size=unlimited time=unlimited";
  return {fmt::format("dn.exact=\"{}\" {}", root_dn, unlimited),
          fmt::format("dn.children=\"ou=replicators,{}\" {}", suffix, unlimited),
          fmt::format("group/groupOfNames/member=\"{}\" {}", directory_peers_dn(suffix), unlimited)};
}

namespace {
Result<bool> replace_ordered(LdapConnection& config, const std::string& database, const std::string& attribute,
                             const std::vector<std::string>& values) {
  CA_TRY(auto entry, config.read(database, {attribute}));
  if (!entry) return fail(Error::directory(fmt::format("cn=config has no {}", database)));
  std::vector<std::string> current;
  if (const auto* present = entry->values(attribute))
    for (const auto& v : *present) current.emplace_back(without_position(v));
  if (current == values) return false;
  std::vector<std::string> numbered;
  numbered.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) numbered.push_back(fmt::format("{{{}}}{}", i, values[i]));
  // One modify: slapd swaps the whole list at once, never leaving a directory half-guarded.
  CA_CHECK(config.modify(database, {LdapModification{LdapModification::Op::replace, attribute, numbered}}));
  log::info(kLog, "set the {} of {} ({} values, {} before)", attribute, database, values.size(), current.size());
  return true;
}
}  // namespace

Result<bool> apply_directory_access(LdapConnection& config, const std::string& database,
                                    const std::vector<std::string>& rules) {
  return replace_ordered(config, database, "olcAccess", rules);
}

Result<bool> apply_directory_limits(LdapConnection& config, const std::string& database,
                                    const std::vector<std::string>& limits) {
  return replace_ordered(config, database, "olcLimits", limits);
}

}  // namespace ca::store
