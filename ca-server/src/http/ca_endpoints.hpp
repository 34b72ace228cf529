#pragma once
// The CA's REST endpoints (Dogtag-style paths under /ca/rest). Each handler is linear:
// decode -> validate -> act (authority) -> render; every failure is a ca::Error rendered once.
#include "authority/issuance/certificate_authority.hpp"
#include "authority/issuance/idempotency.hpp"
#include "http/router.hpp"

namespace ca::http {

// `keys`: where Idempotency-Keys of enrollments are claimed (null: such requests get 503).
void register_ca_endpoints(Router& router, authority::CertificateAuthority& authority,
                           authority::IdempotencyKeys* keys = nullptr);

}  // namespace ca::http
