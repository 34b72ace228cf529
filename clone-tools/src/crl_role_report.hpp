#pragma once
// What `ca-clone crl-master status` (and a line of `ca-clone status`) shows about the CRL master
// role: the lease on the issuing point entry as the directory holds it, and the latest CRL numbers.
// Pure: the commands read the directory and hand the values in; the tests fabricate them.
//
// An epoch is (generation << 12) | the replica ID of the instance that minted it, a CRL number
// (epoch << 32) | sequence (authority/revocation/crl_numbering.hpp): both are shown split, so that a number
// can be traced to the takeover that minted its epoch.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "store/records.hpp"

namespace ca::clone_tools {

// The issuing point the instances elect their CRL master on.
const std::string& crl_issuing_point();

struct CrlRoleReport {
  std::string issuing_point;
  store::CrlLease lease;
  std::optional<store::CrlRecord> numbers;  // nullopt: no CRL published yet
  // This machine's clock when the lease was read: only for "expires in N s", which is informational
  // (the instances judge expiry by their own monotonic clocks, never by this).
  std::chrono::system_clock::time_point read_at{};
};

// "8194 (generation 2, minted by replica 2)"
std::string epoch_text(uint64_t epoch);
// "35192962023425 (epoch 8194, sequence 1)"
std::string crl_number_text(uint64_t number);
// One line: "clone1, epoch 8194 (generation 2, minted by replica 2); pinned to clone1", or
// "nobody", or "given back by 'clone1', epoch ...: the next eligible instance takes it".
std::string crl_holder_summary(const store::CrlLease& lease);

// The lines of `crl-master status`, each ending in '\n'.
std::string crl_role_text(const CrlRoleReport& report);
// The lease alone (holder, epoch and its parts, expiry, pin, handover): `ca-clone status --json`.
boost::json::object crl_lease_json(const store::CrlLease& lease, std::chrono::system_clock::time_point read_at);
// The lease and the CRL numbers: `crl-master status --json`.
boost::json::object crl_role_json(const CrlRoleReport& report);

}  // namespace ca::clone_tools
