#pragma once
// The one seam between code that signs and where keys are kept. A key is named by a URI and
// opened by open_signing_key; callers then hold a SigningKey and never a file path.
//
//   file:/srv/ca1/private/ca_signing.key   a PEM key in a file (RFC 8089); a plain path is read
//                                          the same way, for configurations written before URIs
//   pkcs11:token=...;object=...            a hardware key (RFC 7512): refused by this build
//
// A store that keeps the private half elsewhere (an OpenSSL 3 provider: PKCS#11, a KMS) hands back
// an EVP_PKEY backed by that provider; everything above this header signs it the same way.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/keys.hpp"

namespace ca::crypto {

// A private key that signs. Move-only; sign() may be called from several threads at once.
class SigningKey {
 public:
  // A key already in memory (just generated, or kept elsewhere); `uri` says where it is stored,
  // empty when nowhere yet. internal error for a null key.
  [[nodiscard]] static Result<SigningKey> from_key(ossl::UniquePtr<EVP_PKEY> key, std::string uri = {});

  // The OpenSSL handle, for the OpenSSL calls that take the key itself (X509_sign,
  // OCSP_basic_sign). Owned by this SigningKey.
  EVP_PKEY* handle() const { return key_.get(); }
  const std::string& uri() const { return uri_; }
  PublicKeyInfo public_key_info() const { return describe_public_key(key_.get()); }
  // The digest its signatures use (signing_digest_for): nullptr for EdDSA, which hashes itself.
  const EVP_MD* digest() const { return digest_; }

  // A signature over `data` with digest() (PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC, raw
  // for EdDSA): what EVP_DigestSign makes. crypto error when the key refuses.
  [[nodiscard]] Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) const;

 private:
  SigningKey(ossl::UniquePtr<EVP_PKEY> key, std::string uri);
  ossl::UniquePtr<EVP_PKEY> key_;
  std::string uri_;
  const EVP_MD* digest_ = nullptr;
};

// Opens the private key a URI names (see above). Errors: config for an unknown or unsupported
// scheme (pkcs11:) and for a file that does not hold an unencrypted private key; io for a file
// that cannot be read. Also for keys that only decrypt (the KRA's), which are named the same way.
[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> open_private_key(std::string_view uri);
[[nodiscard]] Result<SigningKey> open_signing_key(std::string_view uri);

}  // namespace ca::crypto
