#include "http/admin_endpoints.hpp"

#include <charconv>

#include <boost/json.hpp>
#include <fmt/format.h>

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
  CA_TRY(auto admin, administrators.identify(ctx.peer_certificate_pem));
  if (admin) {
    CA_TRY(caller.administrator, administrators.authenticate(ctx.peer_certificate_pem, call_of(ctx)));
    ctx.annotations->set_agent(caller.administrator->display());
    return caller;
  }
  CA_TRY(caller.instance, instances.authenticate(ctx.peer_certificate_pem, call_of(ctx)));
  return caller;
}

template <typename Fn>
Handler guarded(authority::InstanceAuthenticator& instances, authority::AgentAuthenticator& administrators,
                bhttp::status success, Fn fn) {
  return [&instances, &administrators, success, fn](RequestContext ctx, Responder respond) {
    auto result = [&]() -> Result<json::value> {
      CA_TRY(auto caller, authenticate_caller(instances, administrators, ctx));
      return fn(ctx, caller);
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(success, *result));
  };
}

}  // namespace

void register_admin_endpoints(Router& router, authority::InstanceAuthenticator& auth,
                              authority::AgentAuthenticator& administrators, authority::CloneRegistry& clones) {
  // An administrator, the instance itself (its certificate), or a new clone (a join token in the body).
  router.add(bhttp::verb::post, "/ca/rest/admin/clones", [&auth, &administrators, &clones](RequestContext ctx,
                                                                                          Responder respond) {
    auto result = [&]() -> Result<json::value> {
      CA_TRY(auto body, parse_json_object(*ctx.request));
      for (const auto& [key, value] : body)
        if (key != "instance_id" && key != "url" && key != "subsystem_csr" && key != "join_token")
          return fail(Error::bad_request(fmt::format("unknown field '{}'", std::string(key).substr(0, 64))));
      authority::RegistrationRequest request;
      CA_TRY(request.instance_id, required_string(body, "instance_id"));
      CA_TRY(request.url, required_string(body, "url"));
      if (auto* v = body.if_contains("subsystem_csr"); v && v->is_string()) request.subsystem_csr = std::string(v->as_string());
      if (auto* v = body.if_contains("join_token"); v && v->is_string()) request.join_token = std::string(v->as_string());
      authority::RegistryCaller caller;
      if (request.join_token.empty() || !ctx.peer_certificate_pem.empty()) {
        CA_TRY(caller, authenticate_caller(auth, administrators, ctx));
      }
      CA_TRY(auto reg, clones.register_clone(request, caller));
      json::object o;
      o["replica_id"] = reg.replica_id;
      o["instance_id"] = reg.instance_id;
      o["suffix"] = reg.suffix;
      o["replication_bind_dn"] = reg.replication_bind_dn;
      o["replication_password"] = reg.replication_password;
      o["master_directory_url"] = reg.master_directory_url;
      o["master_replica_id"] = reg.master_replica_id;
      o["master_instance_id"] = reg.master_instance_id;
      if (!reg.subsystem_certificate.empty()) o["subsystem_certificate"] = reg.subsystem_certificate;
      return o;
    }();
    if (!result) return respond(error_response(result.error()));
    respond(json_response(bhttp::status::created, *result));
  });
  router.add(bhttp::verb::post, "/ca/rest/admin/clones/{replica_id}/replication",
             guarded(auth, administrators, bhttp::status::ok,
                     [&clones](const RequestContext& ctx, const authority::RegistryCaller& caller) -> Result<json::value> {
               CA_TRY(int id, replica_param(ctx));
               CA_TRY(auto body, parse_json_object(*ctx.request));
               CA_TRY(std::string url, required_string(body, "directory_url"));
               CA_CHECK(clones.connect_clone(id, url, caller));
               json::object o;
               o["replica_id"] = id;
               o["directory_url"] = url;
               o["status"] = "consuming";
               return o;
             }));
  router.add(bhttp::verb::delete_, "/ca/rest/admin/clones/{replica_id}",
             guarded(auth, administrators, bhttp::status::ok,
                     [&clones](const RequestContext& ctx, const authority::RegistryCaller& caller) -> Result<json::value> {
               CA_TRY(int id, replica_param(ctx));
               CA_CHECK(clones.retire_clone(id, caller));
               json::object o;
               o["replica_id"] = id;
               o["status"] = "retired";
               return o;
             }));
  router.add(bhttp::verb::get, "/ca/rest/admin/topology",
             guarded(auth, administrators, bhttp::status::ok,
                     [&clones](const RequestContext&, const authority::RegistryCaller&) -> Result<json::value> {
               CA_TRY(auto members, clones.topology());
               json::array list;
               auto range = [](const std::optional<store::NumberRange>& r) -> json::value {
                 if (!r) return nullptr;
                 return json::value(store::format_range(*r));
               };
               for (const auto& m : members) {
                 json::object o;
                 o["replica_id"] = m.replica.replica_id;
                 o["instance_id"] = m.replica.instance_id;
                 o["url"] = m.replica.url;
                 o["retired"] = m.replica.retired;
                 o["serial_current"] = range(m.replica.serial_current);
                 o["serial_standby"] = range(m.replica.serial_standby);
                 o["serial_next"] = m.replica.serial_next;
                 o["request_current"] = range(m.replica.request_current);
                 o["request_standby"] = range(m.replica.request_standby);
                 o["request_next"] = m.replica.request_next;
                 o["heartbeat"] = std::chrono::duration_cast<std::chrono::seconds>(m.replica.heartbeat.time_since_epoch()).count();
                 o["agreement"] = m.agreement;
                 if (m.agreement) o["directory_url"] = m.directory_url;
                 list.push_back(std::move(o));
               }
               json::object out;
               out["instances"] = std::move(list);
               return out;
             }));
}

}  // namespace ca::http
