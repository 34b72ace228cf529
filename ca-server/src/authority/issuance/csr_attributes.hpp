#pragma once
// What a client should put in its request under a profile, as EST's /csrattrs tells it
// (RFC 7030 section 4.5.2: CsrAttrs, a SEQUENCE of OIDs and attributes).
#include <cstdint>
#include <vector>

#include "authority/issuance/profile.hpp"

namespace ca::authority {

// The key the profile prefers (an EC key on its first curve, else RSA) and the signature
// algorithm to sign the request with, as DER CsrAttrs.
std::vector<uint8_t> csr_attributes_der(const Profile& profile);

}  // namespace ca::authority
