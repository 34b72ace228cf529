#pragma once
// `ca-server agent list|add|remove`: the operator's way to manage agents directly in the
// instance's directory, e.g. after every agent credential was lost. Local only: whoever runs it
// can read the instance folder (the CA key, the directory password) and so is already trusted.
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct AgentEntry {
  std::string member_value;  // serial=<hex>;sha256=<hex>
  std::string serial_hex;
  std::string subject_dn;    // from the certificate record; empty if the record is missing
  std::string status;        // VALID, REVOKED, ... or "missing"
};

Result<std::vector<AgentEntry>> list_agents(store::CaStore& store);
// Adds a certificate issued by this CA (VALID in the directory) to the agents group.
Result<AgentEntry> add_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                         const std::filesystem::path& certificate_file);
// Issues a new agent certificate (profile caAgentCert, EC P-256 key made here) and adds it.
// The key and certificate are written to out_dir (key 0600). The serial is 127 random bits,
// checked against the directory, so a running server's number ranges are not touched.
Result<AgentEntry> issue_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                           const std::string& subject, const std::filesystem::path& out_dir);
// Removes the agent whose certificate has this serial; with revoke, also revokes it (superseded).
Result<AgentEntry> remove_agent(store::CaStore& store, std::string_view serial_hex, bool revoke);

}  // namespace ca::authority
