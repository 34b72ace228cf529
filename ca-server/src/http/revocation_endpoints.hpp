#pragma once
// Agent endpoints (TLS client certificate of an agent required) and the relying-party endpoints:
// CRLs (full and delta, Dogtag's getCRL path too) and OCSP.
#include <chrono>

#include "authority/issuance/certificate_authority.hpp"
#include "authority/revocation/crl_publisher.hpp"
#include "authority/revocation/ocsp_responder.hpp"
#include "authority/revocation/revocation.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_agent_endpoints(Router& router, authority::AgentAuthenticator& agents,
                              authority::RevocationService& revocation);
void register_crl_endpoints(Router& router, authority::CrlPublisher& crls);
// A look-up not finished within `try_later_after` (a slow or frozen directory) is answered with
// an OCSPResponse tryLater (HTTP 200, RFC 6960 2.3) instead of the transport's 503.
void register_ocsp_endpoints(Router& router, authority::OcspResponder& ocsp, std::chrono::milliseconds try_later_after);

}  // namespace ca::http
