#pragma once
// The roles of people, as real CAs separate them, each a group of certificates in the directory:
// - administrators manage agents, auditors and instances (they approve role certificates);
// - agents approve certificate requests, revoke, make enrollment codes, approve key recoveries;
// - auditors read and verify the audit trail.
// A person is an *identity*: the subject DN of the role certificates issued to them. One identity
// may hold several certificates (a renewal, a second device, two roles from `init`), and every
// approval counts identities, never certificates. No identity approves its own role certificate
// or one it asked for (docs/security.md, "Separation of duties").
#include <optional>
#include <string>
#include <string_view>

namespace ca::authority {

struct Role {
  std::string_view name;     // "agent", "administrator", "auditor": the profile's `role:` value
  std::string_view group;    // cn=<group>,ou=groups,<suffix>
  std::string_view profile;  // the built-in profile that issues it
  std::string_view command;  // `ca-server <command> list|add|remove`
};

inline constexpr Role kAgentRole{"agent", "Certificate Manager Agents", "caAgentCert", "agent"};
inline constexpr Role kAdministratorRole{"administrator", "Administrators", "caAdminCert", "admin"};
inline constexpr Role kAuditorRole{"auditor", "Auditors", "caAuditorCert", "auditor"};

inline constexpr std::string_view kAgentGroup = kAgentRole.group;

inline std::optional<Role> role_named(std::string_view name) {
  for (const Role& r : {kAgentRole, kAdministratorRole, kAuditorRole})
    if (r.name == name) return r;
  return std::nullopt;
}

// How a request made by a role holder names them: "<role> <subject DN> (0x<serial>)".
// identity_of_requester() gives the subject DN back (nullopt for anonymous and other requesters).
std::string requester_label(std::string_view role, std::string_view subject_dn, std::string_view serial_hex);
std::optional<std::string> identity_of_requester(std::string_view requester);

}  // namespace ca::authority
