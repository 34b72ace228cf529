#include "api/instance_messages.hpp"

namespace ca::api {

void tag_invoke(json::value_from_tag, json::value& v, const LivenessAnswer& m) {
  v = json::object{{"status", m.status}};
}

Result<LivenessAnswer> decode(Decoding<LivenessAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  LivenessAnswer m;
  CA_TRY(m.status, in.required<std::string>("status"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const ReadinessCheckReport& m) {
  json::object o;
  o["name"] = m.name;
  o["ok"] = m.ok;
  o["detail"] = m.detail;
  o["seconds"] = m.seconds;
  if (m.advisory) o["advisory"] = true;
  v = std::move(o);
}

Result<ReadinessCheckReport> decode(Decoding<ReadinessCheckReport>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  ReadinessCheckReport m;
  CA_TRY(m.name, in.required<std::string>("name"));
  CA_TRY(m.ok, in.required<bool>("ok"));
  CA_TRY(m.detail, in.required<std::string>("detail"));
  CA_TRY(m.seconds, in.required<double>("seconds"));
  CA_TRY(auto advisory, in.optional<bool>("advisory"));
  m.advisory = advisory.value_or(false);
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const ReadinessAnswer& m) {
  json::array checks;
  for (const auto& c : m.checks) checks.push_back(json::value_from(c));
  json::object o;
  o["ready"] = m.ready;
  o["checked_at"] = m.checked_at;
  o["checks"] = std::move(checks);
  v = std::move(o);
}

Result<ReadinessAnswer> decode(Decoding<ReadinessAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  ReadinessAnswer m;
  CA_TRY(m.ready, in.required<bool>("ready"));
  CA_TRY(m.checked_at, in.required<std::string>("checked_at"));
  CA_TRY(m.checks, in.required<std::vector<ReadinessCheckReport>>("checks"));
  return m;
}

Result<CaInfoAnswer> decode(Decoding<CaInfoAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  CaInfoAnswer m;
  CA_TRY(m.certificate_chain, in.required<std::string>("certificate_chain"));
  return m;
}

}  // namespace ca::api
