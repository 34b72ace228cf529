#pragma once
// One owner type for every OpenSSL object: ca::ossl::UniquePtr<T>.
#include <memory>
#include <string>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace ca::ossl {

template <typename T>
struct Deleter;

// T is a type name (it cannot be put in parentheses).
// NOLINTBEGIN(bugprone-macro-parentheses)
#define CA_OSSL_DELETER(T, fn)                      \
  template <>                                       \
  struct Deleter<T> {                               \
    void operator()(T* p) const noexcept { fn(p); } \
  };
// NOLINTEND(bugprone-macro-parentheses)

CA_OSSL_DELETER(X509, X509_free)
CA_OSSL_DELETER(X509_REQ, X509_REQ_free)
CA_OSSL_DELETER(X509_CRL, X509_CRL_free)
CA_OSSL_DELETER(X509_NAME, X509_NAME_free)
CA_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free)
CA_OSSL_DELETER(X509_STORE, X509_STORE_free)
CA_OSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free)
CA_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free)
CA_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
CA_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free)
CA_OSSL_DELETER(BIO, BIO_free_all)
CA_OSSL_DELETER(BIGNUM, BN_free)
// ASN1_INTEGER, ASN1_TIME and ASN1_OCTET_STRING are all ASN1_STRING in OpenSSL.
CA_OSSL_DELETER(ASN1_STRING, ASN1_STRING_free)
CA_OSSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free)
CA_OSSL_DELETER(GENERAL_NAME, GENERAL_NAME_free)
CA_OSSL_DELETER(PKCS12, PKCS12_free)
CA_OSSL_DELETER(OCSP_REQUEST, OCSP_REQUEST_free)
CA_OSSL_DELETER(OCSP_RESPONSE, OCSP_RESPONSE_free)
CA_OSSL_DELETER(OCSP_BASICRESP, OCSP_BASICRESP_free)
CA_OSSL_DELETER(OCSP_CERTID, OCSP_CERTID_free)
#undef CA_OSSL_DELETER

template <>
struct Deleter<STACK_OF(X509)> {
  void operator()(STACK_OF(X509) * p) const noexcept { sk_X509_pop_free(p, X509_free); }
};
template <>
struct Deleter<STACK_OF(X509_EXTENSION)> {
  void operator()(STACK_OF(X509_EXTENSION) * p) const noexcept { sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free); }
};

template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter<T>>;

// Shared ownership made explicit: a second owner of the same object.
inline UniquePtr<X509> up_ref(X509* p) {
  X509_up_ref(p);
  return UniquePtr<X509>(p);
}
inline UniquePtr<EVP_PKEY> up_ref(EVP_PKEY* p) {
  EVP_PKEY_up_ref(p);
  return UniquePtr<EVP_PKEY>(p);
}

// Drains the thread's OpenSSL error queue into one readable line.
std::string drain_errors();

}  // namespace ca::ossl
