#pragma once
// The admin API's messages (http/admin_endpoints.hpp serves them; `ca-clone spawn` and
// `ca-clone remove` send and read them):
//   POST   /ca/rest/admin/clones                         CloneRegistrationRequest -> CloneRegistrationAnswer
//   POST   /ca/rest/admin/clones/{replica_id}/replication ReplicationConnectRequest -> ReplicationConnectAnswer
//   DELETE /ca/rest/admin/clones/{replica_id}                                      -> CloneRetirementAnswer
//   GET    /ca/rest/admin/topology                                                 -> TopologyAnswer
// Encoding writes the fields in the order shown, absent optional fields left out (or null where
// noted). Requests refuse unknown fields where the server always did (registration); answers
// ignore them, so that a server may add a field without breaking an older ca-clone.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "api/message_fields.hpp"

namespace ca::api {

// A new clone (join token and CSR of its subsystem key), or a registered instance again (its own
// subsystem certificate authenticates it; no token, no CSR).
struct CloneRegistrationRequest {
  std::string instance_id;
  std::string url;                           // https://host:port where the clone will serve
  std::optional<std::string> join_token;     // "<id>.<secret>"
  std::optional<std::string> subsystem_csr;  // PEM
};

struct CloneRegistrationAnswer {
  int replica_id = 0;
  std::string instance_id;
  std::string suffix;
  std::string replication_bind_dn;
  std::string replication_password;
  std::string master_directory_url;
  int master_replica_id = 0;
  std::string master_instance_id;
  std::optional<std::string> subsystem_certificate;  // PEM, when the request had a CSR
};

struct ReplicationConnectRequest {
  std::string directory_url;  // where the clone's directory listens for the master's to consume
};

struct ReplicationConnectAnswer {
  int replica_id = 0;
  std::string directory_url;
  std::string status = "consuming";
};

struct CloneRetirementAnswer {
  int replica_id = 0;
  std::string status = "retired";
};

// One instance as the registry lists it. Ranges are "low-high" text, null when there is none.
struct TopologyInstance {
  int replica_id = 0;
  std::string instance_id;
  std::string url;
  bool retired = false;
  std::optional<std::string> serial_current, serial_standby;
  uint64_t serial_next = 0;
  std::optional<std::string> request_current, request_standby;
  uint64_t request_next = 0;
  int64_t heartbeat = 0;                     // seconds since the epoch of the instance's last save
  bool agreement = false;                    // this instance's directory consumes from it...
  std::optional<std::string> directory_url;  // ...at this URL (written only with an agreement)
};

struct TopologyAnswer {
  std::vector<TopologyInstance> instances;

  // The active (non-retired) instance of that ID, if listed.
  [[nodiscard]] const TopologyInstance* active_instance(std::string_view instance_id) const;
  // Whether the instance of that replica ID is listed as retired.
  [[nodiscard]] bool lists_as_retired(int replica_id) const;
};

void tag_invoke(json::value_from_tag, json::value& v, const CloneRegistrationRequest& m);
void tag_invoke(json::value_from_tag, json::value& v, const CloneRegistrationAnswer& m);
void tag_invoke(json::value_from_tag, json::value& v, const ReplicationConnectRequest& m);
void tag_invoke(json::value_from_tag, json::value& v, const ReplicationConnectAnswer& m);
void tag_invoke(json::value_from_tag, json::value& v, const CloneRetirementAnswer& m);
void tag_invoke(json::value_from_tag, json::value& v, const TopologyInstance& m);
void tag_invoke(json::value_from_tag, json::value& v, const TopologyAnswer& m);

Result<CloneRegistrationRequest> decode(Decoding<CloneRegistrationRequest>, const json::value& v, const FieldPath& at);
Result<CloneRegistrationAnswer> decode(Decoding<CloneRegistrationAnswer>, const json::value& v, const FieldPath& at);
Result<ReplicationConnectRequest> decode(Decoding<ReplicationConnectRequest>, const json::value& v,
                                         const FieldPath& at);
Result<ReplicationConnectAnswer> decode(Decoding<ReplicationConnectAnswer>, const json::value& v, const FieldPath& at);
Result<CloneRetirementAnswer> decode(Decoding<CloneRetirementAnswer>, const json::value& v, const FieldPath& at);
Result<TopologyInstance> decode(Decoding<TopologyInstance>, const json::value& v, const FieldPath& at);
Result<TopologyAnswer> decode(Decoding<TopologyAnswer>, const json::value& v, const FieldPath& at);

}  // namespace ca::api
