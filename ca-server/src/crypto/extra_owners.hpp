#pragma once
// Owners for the OpenSSL types only the crypto layer handles (extension structures, buffers from
// OPENSSL_malloc). The types other layers share live in core/openssl_owners.hpp.
#include <memory>

#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

namespace ca::crypto::detail {

template <auto Free>
struct FreeWith {
  template <typename T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};
template <typename T, auto Free>
using Owned = std::unique_ptr<T, FreeWith<Free>>;

// OPENSSL_free is a macro (it records file and line); this gives it an address.
inline void openssl_free(void* p) noexcept { OPENSSL_free(p); }

using OpensslChars = Owned<char, openssl_free>;
using OpensslBytes = Owned<unsigned char, openssl_free>;
using BasicConstraints = Owned<BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free>;
using ExtendedKeyUsage = Owned<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using AuthorityKeyId = Owned<AUTHORITY_KEYID, AUTHORITY_KEYID_free>;
using CrlDistPoints = Owned<CRL_DIST_POINTS, CRL_DIST_POINTS_free>;
using DistPoint = Owned<DIST_POINT, DIST_POINT_free>;
using AuthorityInfoAccess = Owned<AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free>;
using AccessDescription = Owned<ACCESS_DESCRIPTION, ACCESS_DESCRIPTION_free>;
using Asn1Null = Owned<ASN1_NULL, ASN1_NULL_free>;
using RsaPssParams = Owned<RSA_PSS_PARAMS, RSA_PSS_PARAMS_free>;

}  // namespace ca::crypto::detail
