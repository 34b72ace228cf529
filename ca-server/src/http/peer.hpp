#pragma once
// The caller of a request as every front end hands it to the authority.
#include "authority/access/peer_identity.hpp"
#include "http/types.hpp"

namespace ca::http {

inline authority::PeerIdentity peer_of(const RequestContext& ctx) { return {ctx.peer_certificate, ctx.remote_address}; }

}  // namespace ca::http
