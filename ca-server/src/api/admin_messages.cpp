#include "api/admin_messages.hpp"

namespace ca::api {

namespace {

json::value string_or_null(const std::optional<std::string>& text) {
  return text ? json::value(*text) : json::value(nullptr);
}

}  // namespace

void tag_invoke(json::value_from_tag, json::value& v, const CloneRegistrationRequest& m) {
  json::object o;
  o["instance_id"] = m.instance_id;
  o["url"] = m.url;
  put_if(o, "join_token", m.join_token);
  put_if(o, "subsystem_csr", m.subsystem_csr);
  v = std::move(o);
}

Result<CloneRegistrationRequest> decode(Decoding<CloneRegistrationRequest>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  CA_CHECK(in.refuse_unknown({"instance_id", "url", "subsystem_csr", "join_token"}));
  CloneRegistrationRequest m;
  CA_TRY(m.instance_id, in.required<std::string>("instance_id"));
  CA_TRY(m.url, in.required<std::string>("url"));
  CA_TRY(m.join_token, in.optional<std::string>("join_token"));
  CA_TRY(m.subsystem_csr, in.optional<std::string>("subsystem_csr"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const CloneRegistrationAnswer& m) {
  json::object o;
  o["replica_id"] = m.replica_id;
  o["instance_id"] = m.instance_id;
  o["suffix"] = m.suffix;
  o["replication_bind_dn"] = m.replication_bind_dn;
  o["replication_password"] = m.replication_password;
  o["master_directory_url"] = m.master_directory_url;
  o["master_replica_id"] = m.master_replica_id;
  o["master_instance_id"] = m.master_instance_id;
  put_if(o, "subsystem_certificate", m.subsystem_certificate);
  v = std::move(o);
}

Result<CloneRegistrationAnswer> decode(Decoding<CloneRegistrationAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  CloneRegistrationAnswer m;
  CA_TRY(m.replica_id, in.required<int>("replica_id"));
  CA_TRY(m.instance_id, in.required<std::string>("instance_id"));
  CA_TRY(m.suffix, in.required<std::string>("suffix"));
  CA_TRY(m.replication_bind_dn, in.required<std::string>("replication_bind_dn"));
  CA_TRY(m.replication_password, in.required<std::string>("replication_password"));
  CA_TRY(m.master_directory_url, in.required<std::string>("master_directory_url"));
  CA_TRY(m.master_replica_id, in.required<int>("master_replica_id"));
  CA_TRY(m.master_instance_id, in.required<std::string>("master_instance_id"));
  CA_TRY(m.subsystem_certificate, in.optional<std::string>("subsystem_certificate"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const ReplicationConnectRequest& m) {
  v = json::object{{"directory_url", m.directory_url}};
}

Result<ReplicationConnectRequest> decode(Decoding<ReplicationConnectRequest>, const json::value& v,
                                         const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  ReplicationConnectRequest m;
  CA_TRY(m.directory_url, in.required<std::string>("directory_url"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const ReplicationConnectAnswer& m) {
  json::object o;
  o["replica_id"] = m.replica_id;
  o["directory_url"] = m.directory_url;
  o["status"] = m.status;
  v = std::move(o);
}

Result<ReplicationConnectAnswer> decode(Decoding<ReplicationConnectAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  ReplicationConnectAnswer m;
  CA_TRY(m.replica_id, in.required<int>("replica_id"));
  CA_TRY(m.directory_url, in.required<std::string>("directory_url"));
  CA_TRY(m.status, in.required<std::string>("status"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const CloneRetirementAnswer& m) {
  json::object o;
  o["replica_id"] = m.replica_id;
  o["status"] = m.status;
  v = std::move(o);
}

Result<CloneRetirementAnswer> decode(Decoding<CloneRetirementAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  CloneRetirementAnswer m;
  CA_TRY(m.replica_id, in.required<int>("replica_id"));
  CA_TRY(m.status, in.required<std::string>("status"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const TopologyInstance& m) {
  json::object o;
  o["replica_id"] = m.replica_id;
  o["instance_id"] = m.instance_id;
  o["url"] = m.url;
  o["retired"] = m.retired;
  o["serial_current"] = string_or_null(m.serial_current);
  o["serial_standby"] = string_or_null(m.serial_standby);
  o["serial_next"] = m.serial_next;
  o["request_current"] = string_or_null(m.request_current);
  o["request_standby"] = string_or_null(m.request_standby);
  o["request_next"] = m.request_next;
  o["heartbeat"] = m.heartbeat;
  o["agreement"] = m.agreement;
  put_if(o, "directory_url", m.directory_url);
  v = std::move(o);
}

Result<TopologyInstance> decode(Decoding<TopologyInstance>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  TopologyInstance m;
  CA_TRY(m.replica_id, in.required<int>("replica_id"));
  CA_TRY(m.instance_id, in.required<std::string>("instance_id"));
  CA_TRY(m.url, in.required<std::string>("url"));
  CA_TRY(m.retired, in.required<bool>("retired"));
  CA_TRY(m.serial_current, in.optional<std::string>("serial_current"));
  CA_TRY(m.serial_standby, in.optional<std::string>("serial_standby"));
  CA_TRY(m.serial_next, in.required<uint64_t>("serial_next"));
  CA_TRY(m.request_current, in.optional<std::string>("request_current"));
  CA_TRY(m.request_standby, in.optional<std::string>("request_standby"));
  CA_TRY(m.request_next, in.required<uint64_t>("request_next"));
  CA_TRY(m.heartbeat, in.required<int64_t>("heartbeat"));
  CA_TRY(m.agreement, in.required<bool>("agreement"));
  CA_TRY(m.directory_url, in.optional<std::string>("directory_url"));
  return m;
}

void tag_invoke(json::value_from_tag, json::value& v, const TopologyAnswer& m) {
  json::array instances;
  for (const auto& i : m.instances) instances.push_back(json::value_from(i));
  v = json::object{{"instances", std::move(instances)}};
}

Result<TopologyAnswer> decode(Decoding<TopologyAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  TopologyAnswer m;
  CA_TRY(m.instances, in.required<std::vector<TopologyInstance>>("instances"));
  return m;
}

const TopologyInstance* TopologyAnswer::active_instance(std::string_view instance_id) const {
  for (const auto& i : instances)
    if (i.instance_id == instance_id && !i.retired) return &i;
  return nullptr;
}

bool TopologyAnswer::lists_as_retired(int replica_id) const {
  for (const auto& i : instances)
    if (i.replica_id == replica_id && i.retired) return true;
  return false;
}

}  // namespace ca::api
