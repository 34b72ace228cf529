#pragma once
// Internal to the crypto layer: puts a public key into a certificate being built, fast.
#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto::detail {

// X509_set_pubkey with the same result, without OpenSSL 3.0's per-call encoder/decoder round trip
// for EC and RSA keys.
[[nodiscard]] Status set_subject_public_key(X509* cert, EVP_PKEY* key);

}  // namespace ca::crypto::detail
