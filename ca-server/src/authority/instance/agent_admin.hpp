#pragma once
// `ca-server agent|admin|auditor list|add|remove`: the operator's way to manage the holders of a
// role directly in the instance's directory, e.g. after every credential was lost. Local only:
// whoever runs it can read the instance folder (the CA key, the directory password) and so is
// already trusted.
#include <filesystem>
#include <string>
#include <vector>

#include "authority/access/roles.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct AgentEntry {
  std::string member_value;  // serial=<hex>;sha256=<hex>
  std::string serial_hex;
  std::string subject_dn;  // from the certificate record; empty if the record is missing
  std::string status;      // VALID, REVOKED, ... or "missing"
};

[[nodiscard]] Result<std::vector<AgentEntry>> list_agents(store::CaStore& store, const Role& role = kAgentRole);
// Adds a certificate issued by this CA (VALID in the directory) to the role's group.
[[nodiscard]] Result<AgentEntry> add_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                                       const std::filesystem::path& certificate_file,
                                                       const Role& role = kAgentRole);
// Issues a new certificate for the role (its profile, EC P-256 key made here) and adds it.
// The key and certificate are written to out_dir (key 0600) as <command>-<serial>.key/.pem. The
// serial is 127 random bits, checked against the directory, so a running server's number ranges
// are not touched.
[[nodiscard]] Result<AgentEntry> issue_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                                         const std::string& subject,
                                                         const std::filesystem::path& out_dir,
                                                         const Role& role = kAgentRole);
// Removes the holder whose certificate has this serial; with revoke, also revokes it (superseded).
[[nodiscard]] Result<AgentEntry> remove_agent(store::CaStore& store, std::string_view serial_hex, bool revoke,
                                              const Role& role = kAgentRole);

}  // namespace ca::authority
