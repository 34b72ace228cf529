#pragma once
// Route handlers for agents only: the TLS client certificate is checked against the agents group
// at every request (401 without a certificate, 403 for one that is not an agent's, authority/
// revocation.hpp), then the endpoint runs with the agent's identity.
#include <utility>

#include "authority/revocation.hpp"
#include "http/responses.hpp"
#include "http/types.hpp"

namespace ca::http {

// `fn(ctx, agent, respond)` answers itself (possibly later, from another thread).
template <typename Fn>
Handler for_agents(authority::AgentAuthenticator& agents, Fn fn) {
  return [&agents, fn](RequestContext ctx, Responder respond) {
    auto agent = agents.authenticate(ctx.peer_certificate_pem);
    if (!agent) return respond(error_response(agent.error()));
    fn(ctx, *agent, std::move(respond));
  };
}

// `fn(ctx, agent)` returns the response, or the error to answer with.
template <typename Fn>
Handler for_agents_returning(authority::AgentAuthenticator& agents, Fn fn) {
  return for_agents(agents, [fn](const RequestContext& ctx, const authority::AgentIdentity& agent, Responder respond) {
    auto result = fn(ctx, agent);
    if (!result) return respond(error_response(result.error()));
    respond(std::move(*result));
  });
}

}  // namespace ca::http
