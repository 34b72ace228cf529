#pragma once
// Route handlers for agents only: the TLS client certificate is checked against the agents group
// at every request (401 without a certificate, 403 for one that is not an agent's, authority/
// revocation.hpp), then the endpoint runs with the agent's identity.
#include <string>
#include <utility>

#include "authority/issuance/certificate_authority.hpp"
#include "authority/revocation/revocation.hpp"
#include "http/responses.hpp"
#include "http/types.hpp"

namespace ca::http {

// Authenticates the caller as an agent: the call is audited (method and route pattern) and the
// agent noted for the access log.
inline Result<authority::AgentIdentity> authenticate_agent(authority::AgentAuthenticator& agents,
                                                           const RequestContext& ctx) {
  auto agent = agents.authenticate(ctx.peer_certificate,
                                   std::string(ctx.request->method_string()) + " " + ctx.annotations->route());
  if (agent) ctx.annotations->set_agent(agent->display());
  return agent;
}

// Authenticates the caller as one who decides on certificate requests: an agent, or an
// administrator (role certificates; the authority checks which requests each may decide).
inline Result<authority::AgentIdentity> authenticate_approver(authority::CertificateAuthority& ca,
                                                              const RequestContext& ctx) {
  auto who = ca.authenticate_approver(ctx.peer_certificate,
                                      std::string(ctx.request->method_string()) + " " + ctx.annotations->route());
  if (who) ctx.annotations->set_agent(who->display());
  return who;
}

template <typename Fn>
Handler for_approvers(authority::CertificateAuthority& ca, Fn fn) {
  return [&ca, fn](const RequestContext& ctx, const Responder& respond) {
    auto who = authenticate_approver(ca, ctx);
    if (!who) return respond(error_response(who.error()));
    fn(ctx, *who, std::move(respond));
  };
}

// `fn(ctx, agent, respond)` answers itself (possibly later, from another thread).
template <typename Fn>
Handler for_agents(authority::AgentAuthenticator& agents, Fn fn) {
  return [&agents, fn](const RequestContext& ctx, const Responder& respond) {
    auto agent = authenticate_agent(agents, ctx);
    if (!agent) return respond(error_response(agent.error()));
    fn(ctx, *agent, std::move(respond));
  };
}

// `fn(ctx, agent)` returns the response, or the error to answer with.
template <typename Fn>
Handler for_agents_returning(authority::AgentAuthenticator& agents, Fn fn) {
  return for_agents(agents,
                    [fn](const RequestContext& ctx, const authority::AgentIdentity& agent, const Responder& respond) {
                      auto result = fn(ctx, agent);
                      if (!result) return respond(error_response(result.error()));
                      respond(std::move(*result));
                    });
}

}  // namespace ca::http
