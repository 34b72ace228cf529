#pragma once
// Key generation and the facts about a public key that policy and signing depend on.
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> generate_key(KeyType type);

// A PKCS#10 request for `key` (signed with it: SHA-256, or none for EdDSA) with this subject
// (RFC 4514 text), as PEM. Used by instances asking another instance for their certificates.
[[nodiscard]] Result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view subject);
// The same with a subjectAltName request, in OpenSSL's notation ("DNS:host", "IP:10.0.0.1", "email:a@b").
[[nodiscard]] Result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view subject,
                                               const std::vector<std::string>& alt_names);

struct PublicKeyInfo {
  std::string algorithm;  // "EC", "RSA", "Ed25519", "Ed448", or OpenSSL's name for anything else
  int bits = 0;
  std::string curve;  // EC only: "P-256"/"P-384"/"P-521" (NIST name), else OpenSSL's curve
                      // name ("secp256k1"); "" for other algorithms or explicit parameters
};
[[nodiscard]] PublicKeyInfo describe_public_key(const EVP_PKEY* key);

// SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521; nullptr for Ed25519/Ed448,
// which hash internally.
[[nodiscard]] const EVP_MD* signing_digest_for(const EVP_PKEY* signer);

}  // namespace ca::crypto
