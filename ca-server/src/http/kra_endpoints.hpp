#pragma once
// Key archival and recovery (docs/key-archival.md): the transport certificate clients encrypt
// their keys to, and the agents' recovery requests, approvals and the one-time retrieval.
#include "authority/issuance/certificate_authority.hpp"
#include "authority/key_recovery/key_recovery.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_kra_endpoints(Router& router, authority::CertificateAuthority& ca, authority::KeyArchive& archive);

}  // namespace ca::http
