#pragma once
// Dogtag's end-entity and agent interface as certmonger's dogtag-submit and other Dogtag clients
// use it: form posts under /ca/ee/ca/ and /ca/agent/ca/, answered in Dogtag's XML forms
// (docs/clients.md lists every operation and element).
#include "authority/issuance/certificate_authority.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_dogtag_endpoints(Router& router, authority::CertificateAuthority& authority);

}  // namespace ca::http
