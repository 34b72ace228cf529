#pragma once
// What an instance says about itself (http/health_endpoints.hpp, http/ca_endpoints.hpp serve it;
// `ca-clone status` and `ca-clone spawn` read it):
//   GET /healthz        -> LivenessAnswer
//   GET /readyz         -> ReadinessAnswer (200 ready, 503 not)
//   GET /ca/rest/info   -> CaInfoAnswer (the part ca-clone reads)
// Answers ignore fields they do not name (see admin_messages.hpp).
#include <optional>
#include <string>
#include <vector>

#include "api/message_fields.hpp"

namespace ca::api {

struct LivenessAnswer {
  std::string status = "alive";
};

struct ReadinessCheckReport {
  std::string name;
  bool ok = false;
  std::string detail;
  double seconds = 0;     // how long the check took
  bool advisory = false;  // written only when true: shown, never makes the instance not ready
};

struct ReadinessAnswer {
  bool ready = false;
  std::string checked_at;  // generalized time (YYYYMMDDhhmmssZ)
  std::vector<ReadinessCheckReport> checks;
};

// The CA's certificate (PEM) as /ca/rest/info serves it. The rest of that answer (its limits,
// profiles, ...) is for end entities; ca-clone reads only this, to tell the master's CA from another.
struct CaInfoAnswer {
  std::string certificate_chain;
};

void tag_invoke(json::value_from_tag, json::value& v, const LivenessAnswer& m);
void tag_invoke(json::value_from_tag, json::value& v, const ReadinessCheckReport& m);
void tag_invoke(json::value_from_tag, json::value& v, const ReadinessAnswer& m);

Result<LivenessAnswer> decode(Decoding<LivenessAnswer>, const json::value& v, const FieldPath& at);
Result<ReadinessCheckReport> decode(Decoding<ReadinessCheckReport>, const json::value& v, const FieldPath& at);
Result<ReadinessAnswer> decode(Decoding<ReadinessAnswer>, const json::value& v, const FieldPath& at);
Result<CaInfoAnswer> decode(Decoding<CaInfoAnswer>, const json::value& v, const FieldPath& at);

}  // namespace ca::api
