// The one file of this layer that uses OpenSSL's deprecated EC_KEY/RSA accessors, on purpose:
// OpenSSL 3.0's X509_set_pubkey builds a fresh OSSL_ENCODER for a provider key, encodes it, then
// decodes the DER again with a fresh OSSL_DECODER only to throw the result away (~200 us, most of
// an issuance). For a legacy-backed key it runs the built-in ASN.1 encoder instead (~20 us). The
// encoded SubjectPublicKeyInfo is the same either way.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "crypto/subject_public_key.hpp"

#include <openssl/ec.h>
#include <openssl/rsa.h>

namespace ca::crypto::detail {

namespace {

// A copy of `key` held by a legacy EC_KEY or RSA object; null for other types (they take the slow path).
ossl::UniquePtr<EVP_PKEY> legacy_copy(EVP_PKEY* key) {
  ossl::UniquePtr<EVP_PKEY> copy(EVP_PKEY_new());
  if (!copy) return nullptr;
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      EC_KEY* ec = EVP_PKEY_get1_EC_KEY(key);
      if (!ec || EVP_PKEY_assign_EC_KEY(copy.get(), ec) != 1) {
        EC_KEY_free(ec);
        return nullptr;
      }
      return copy;
    }
    case EVP_PKEY_RSA: {
      RSA* rsa = EVP_PKEY_get1_RSA(key);
      if (!rsa || EVP_PKEY_assign_RSA(copy.get(), rsa) != 1) {
        RSA_free(rsa);
        return nullptr;
      }
      return copy;
    }
    default:
      return nullptr;
  }
}

}  // namespace

Status set_subject_public_key(X509* cert, EVP_PKEY* key) {
  auto legacy = legacy_copy(key);
  if (!legacy) ossl::drain_errors();  // not fatal: the general path follows
  if (X509_set_pubkey(cert, legacy ? legacy.get() : key) != 1)
    return fail(Error::crypto("cannot set the certificate's public key: " + ossl::drain_errors()));
  return ok();
}

}  // namespace ca::crypto::detail
