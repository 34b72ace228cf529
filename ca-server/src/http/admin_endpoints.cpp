#include "http/admin_endpoints.hpp"

#include <charconv>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/admin_messages.hpp"
#include "crypto/pem.hpp"
#include "http/responses.hpp"
#include "store/records.hpp"

namespace ca::http {

namespace json = boost::json;
namespace bhttp = boost::beast::http;

namespace {

Result<int> replica_param(const RequestContext& ctx) {
  const std::string& text = ctx.path_params.at("replica_id");
  int id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id < 1)
    return fail(Error::bad_request(fmt::format("'{}' is not a replica ID", text)));
  return id;
}

// "METHOD /route/{pattern}": what an audited admin call asks for.
std::string call_of(const RequestContext& ctx) {
  return std::string(ctx.request->method_string()) + " " + ctx.annotations->route();
}

// The caller: an administrator's certificate, else an instance's own subsystem certificate (401
// without a certificate, 403 for one that is neither). Every call is audited by its authenticator.
Result<authority::RegistryCaller> authenticate_caller(authority::InstanceAuthenticator& instances,
                                                      authority::AgentAuthenticator& administrators,
                                                      const RequestContext& ctx) {
  authority::RegistryCaller caller;
  CA_TRY(auto admin, administrators.identify(ctx.peer_certificate));
  if (admin) {
    CA_TRY(caller.administrator, administrators.authenticate(ctx.peer_certificate, call_of(ctx)));
    ctx.annotations->set_agent(caller.administrator->display());
    return caller;
  }
  CA_TRY(caller.instance, instances.authenticate(ctx.peer_certificate, call_of(ctx)));
  return caller;
}

template <typename Fn>
Handler guarded(authority::InstanceAuthenticator& instances, authority::AgentAuthenticator& administrators,
                bhttp::status success, Fn fn) {
  return [&instances, &administrators, success, fn](RequestContext ctx, const Responder& respond) {
    auto result = [&]() -> Result<json::value> {
      CA_TRY(auto caller, authenticate_caller(instances, administrators, ctx));
      return fn(ctx, caller);
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(success, *result));
  };
}

// POST /ca/rest/admin/clones: an administrator, the instance itself (its certificate), or a new
// clone (a join token in the body, no certificate).
Result<api::CloneRegistrationAnswer> register_clone(authority::InstanceAuthenticator& instances,
                                                    authority::AgentAuthenticator& administrators,
                                                    authority::CloneRegistry& clones, const RequestContext& ctx) {
  CA_TRY(auto body, parse_json_object(*ctx.request));
  CA_TRY(auto message, api::decode_message<api::CloneRegistrationRequest>(body));
  authority::RegistrationRequest request{message.instance_id, message.url, message.subsystem_csr.value_or(""),
                                         message.join_token.value_or("")};
  authority::RegistryCaller caller;
  if (request.join_token.empty() || !ctx.peer_certificate.empty()) {
    CA_TRY(caller, authenticate_caller(instances, administrators, ctx));
  }
  CA_TRY(auto reg, clones.register_clone(request, caller));
  api::CloneRegistrationAnswer answer{reg.replica_id,          reg.instance_id,          reg.suffix,
                                      reg.replication_bind_dn, reg.replication_password, reg.master_directory_url,
                                      reg.master_replica_id,   reg.master_instance_id,   std::nullopt};
  if (!reg.subsystem_certificate.empty()) answer.subsystem_certificate = reg.subsystem_certificate;
  return answer;
}

std::optional<std::string> range_text(const std::optional<store::NumberRange>& range) {
  if (!range) return std::nullopt;
  return store::format_range(*range);
}

api::TopologyInstance topology_instance(const authority::TopologyMember& m) {
  const store::ReplicaRecord& r = m.replica;
  api::TopologyInstance out;
  out.replica_id = r.replica_id;
  out.instance_id = r.instance_id;
  out.url = r.url;
  out.retired = r.retired;
  out.serial_current = range_text(r.serial_current);
  out.serial_standby = range_text(r.serial_standby);
  out.serial_next = r.serial_next;
  out.request_current = range_text(r.request_current);
  out.request_standby = range_text(r.request_standby);
  out.request_next = r.request_next;
  out.heartbeat = std::chrono::duration_cast<std::chrono::seconds>(r.heartbeat.time_since_epoch()).count();
  out.agreement = m.agreement;
  if (m.agreement) out.directory_url = m.directory_url;
  return out;
}

}  // namespace

void register_admin_endpoints(Router& router, authority::InstanceAuthenticator& auth,
                              authority::AgentAuthenticator& administrators, authority::CloneRegistry& clones) {
  router.add(bhttp::verb::post, "/ca/rest/admin/clones",
             [&auth, &administrators, &clones](const RequestContext& ctx, const Responder& respond) {
               auto answer = register_clone(auth, administrators, clones, ctx);
               if (!answer) return respond(error_response(answer.error()));
               respond(json_response(bhttp::status::created, api::encode_message(*answer)));
             });
  router.add(
      bhttp::verb::post, "/ca/rest/admin/clones/{replica_id}/replication",
      guarded(auth, administrators, bhttp::status::ok,
              [&clones](const RequestContext& ctx, const authority::RegistryCaller& caller) -> Result<json::value> {
                CA_TRY(int id, replica_param(ctx));
                CA_TRY(auto body, parse_json_object(*ctx.request));
                CA_TRY(auto request, api::decode_message<api::ReplicationConnectRequest>(body));
                CA_CHECK(clones.connect_clone(id, request.directory_url, caller));
                return api::encode_message(api::ReplicationConnectAnswer{id, request.directory_url});
              }));
  router.add(
      bhttp::verb::delete_, "/ca/rest/admin/clones/{replica_id}",
      guarded(auth, administrators, bhttp::status::ok,
              [&clones](const RequestContext& ctx, const authority::RegistryCaller& caller) -> Result<json::value> {
                CA_TRY(int id, replica_param(ctx));
                CA_CHECK(clones.retire_clone(id, caller));
                return api::encode_message(api::CloneRetirementAnswer{id});
              }));
  router.add(bhttp::verb::get, "/ca/rest/admin/topology",
             guarded(auth, administrators, bhttp::status::ok,
                     [&clones](const RequestContext&, const authority::RegistryCaller&) -> Result<json::value> {
                       CA_TRY(auto members, clones.topology());
                       api::TopologyAnswer answer;
                       for (const auto& m : members) answer.instances.push_back(topology_instance(m));
                       return api::encode_message(answer);
                     }));
}

}  // namespace ca::http
