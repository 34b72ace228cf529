#include "crypto/keys.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto/pem.hpp"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

namespace ca::crypto {

Result<ossl::UniquePtr<EVP_PKEY>> generate_key(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::ec_p256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
    case KeyType::ec_p384:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
      break;
    case KeyType::rsa_2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
      break;
    case KeyType::rsa_3072:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(3072));
      break;
    case KeyType::ed25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (!key)
    return fail(Error::crypto(fmt::format("cannot generate a {} key: {}", key_type_name(type), ossl::drain_errors())));
  return ossl::UniquePtr<EVP_PKEY>(key);
}

PublicKeyInfo describe_public_key(const EVP_PKEY* key) {
  PublicKeyInfo info;
  info.bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      info.algorithm = "RSA";
      break;
    case EVP_PKEY_ED25519:
      info.algorithm = "Ed25519";
      break;
    case EVP_PKEY_ED448:
      info.algorithm = "Ed448";
      break;
    case EVP_PKEY_EC: {
      info.algorithm = "EC";
      char group[80];
      size_t len = 0;
      // Fails for explicit curve parameters: no name to report, and the profile refuses those.
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1) {
        const char* nist = EC_curve_nid2nist(OBJ_txt2nid(group));
        info.curve = nist ? nist : group;
      }
      ossl::drain_errors();
      break;
    }
    default: {
      const char* name = EVP_PKEY_get0_type_name(key);
      info.algorithm = name ? name : "unknown";
    }
  }
  return info;
}

const EVP_MD* signing_digest_for(const EVP_PKEY* signer) {
  switch (EVP_PKEY_get_base_id(signer)) {
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      return nullptr;
    case EVP_PKEY_EC: {
      // Match the digest to the curve's strength (RFC 5480 §4).
      int bits = EVP_PKEY_get_bits(signer);
      return bits > 384 ? EVP_sha512() : bits > 256 ? EVP_sha384() : EVP_sha256();
    }
    default:
      return EVP_sha256();
  }
}

Result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view subject) { return make_csr_pem(key, subject, {}); }

Result<std::string> make_csr_pem(EVP_PKEY* key, std::string_view subject, const std::vector<std::string>& alt_names) {
  CA_TRY(auto name, parse_name(subject));
  ossl::UniquePtr<X509_REQ> request(X509_REQ_new());
  if (!request || X509_REQ_set_version(request.get(), 0) != 1 ||
      X509_REQ_set_subject_name(request.get(), name.get()) != 1 || X509_REQ_set_pubkey(request.get(), key) != 1)
    return fail(Error::crypto("cannot build a certificate request: " + ossl::drain_errors()));
  if (!alt_names.empty()) {
    std::string value;
    for (const auto& n : alt_names) {
      if (n.find(',') != std::string::npos || n.find('\n') != std::string::npos)
        return fail(Error::bad_request(fmt::format("'{}' is not a valid name", n.substr(0, 64))));
      value += (value.empty() ? "" : ",") + n;
    }
    ossl::UniquePtr<X509_EXTENSION> san(X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str()));
    if (!san) return fail(Error::bad_request("the subject alternative names are not valid: " + ossl::drain_errors()));
    ossl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions(sk_X509_EXTENSION_new_null());
    if (!extensions || sk_X509_EXTENSION_push(extensions.get(), san.get()) <= 0)
      return fail(Error::crypto("cannot build a certificate request: " + ossl::drain_errors()));
    (void)san.release();
    if (X509_REQ_add_extensions(request.get(), extensions.get()) != 1)
      return fail(Error::crypto("cannot build a certificate request: " + ossl::drain_errors()));
  }
  if (X509_REQ_sign(request.get(), key, signing_digest_for(key)) <= 0)
    return fail(Error::crypto("cannot sign the certificate request: " + ossl::drain_errors()));
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), request.get()) != 1)
    return fail(Error::crypto("cannot encode the certificate request: " + ossl::drain_errors()));
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace ca::crypto
