#pragma once
// EST (RFC 7030) under /.well-known/est/: cacerts, simpleenroll, simplereenroll, csrattrs; an
// optional label (/.well-known/est/<profile>/...) selects the profile. Authentication: HTTP Basic
// with an enrollment code as password, or the TLS client certificate.
#include <string>

#include "authority/issuance/certificate_authority.hpp"
#include "http/router.hpp"

namespace ca::http {

// `default_profile`: the profile of requests without a label (config ca.est_profile).
void register_est_endpoints(Router& router, authority::CertificateAuthority& authority,
                            const std::string& default_profile);

}  // namespace ca::http
