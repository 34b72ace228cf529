#pragma once
// Small factories the crypto tests share: keys, names and a self-signed CA. Each returns a Result so
// the test can ASSERT_TRUE on it and print the error.
#include <chrono>
#include <string>
#include <string_view>

#include <openssl/pem.h>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto::fixtures {

struct Issued {
  ossl::UniquePtr<EVP_PKEY> key;
  ossl::UniquePtr<X509_NAME> subject;
  ossl::UniquePtr<X509> cert;
};

// A spec valid for a day around now; callers add what their case needs.
inline CertificateSpec day_spec(X509_NAME* subject, EVP_PKEY* key, std::string serial_hex) {
  CertificateSpec spec;
  spec.serial_hex = std::move(serial_hex);
  spec.subject = subject;
  spec.public_key = key;
  auto now = std::chrono::system_clock::now();
  spec.not_before = now - std::chrono::minutes(5);
  spec.not_after = now + std::chrono::hours(24);
  return spec;
}

inline Result<Issued> make_self_signed_ca(KeyType type, std::string_view subject = "CN=Test CA,O=Example") {
  Issued ca;
  CA_TRY(ca.key, generate_key(type));
  CA_TRY(ca.subject, parse_name(subject));
  CertificateSpec spec = day_spec(ca.subject.get(), ca.key.get(), "1");
  spec.is_ca = true;
  spec.path_len = 0;
  spec.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
  CA_TRY(ca.cert, sign_certificate(spec, nullptr, ca.key.get()));
  return ca;
}

// An Issuer over a certificate and key the test holds (both stay the test's too).
inline Result<Issuer> issuer_of(X509* cert, EVP_PKEY* key) {
  if (!key) return fail(Error::internal("no key"));
  CA_TRY(auto signing_key, SigningKey::from_key(ossl::up_ref(key)));
  return Issuer::create(ossl::up_ref(cert), std::move(signing_key));
}

// A gtest parameter name for a key type ("ec-p256" -> "ec_p256").
inline std::string test_name(KeyType type) {
  std::string name(key_type_name(type));
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

// The DER inside a PEM block, and back, for tests that edit the bytes.
inline std::string pem_body_to_der(std::string_view pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  char *name = nullptr, *header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (!bio || PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) return {};
  std::string der(reinterpret_cast<char*>(data), static_cast<std::size_t>(len));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return der;
}

inline std::string der_to_pem(std::string_view label, std::string_view der) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio(bio.get(), std::string(label).c_str(), "",
                            reinterpret_cast<const unsigned char*>(der.data()), static_cast<long>(der.size())) <= 0)
    return {};
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<std::size_t>(n));
}

}  // namespace ca::crypto::fixtures
