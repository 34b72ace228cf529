#pragma once
// X.509 v3 certificate issuance: one CertificateSpec in, one signed certificate out.
#include <chrono>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

struct CertificateSpec {
  std::string serial_hex;          // see serial_from_hex
  X509_NAME* subject = nullptr;    // not owned
  EVP_PKEY* public_key = nullptr;  // not owned
  std::chrono::system_clock::time_point not_before, not_after;
  bool is_ca = false;
  int path_len = -1;  // CA only; -1 = no limit
  // digitalSignature nonRepudiation keyEncipherment dataEncipherment keyAgreement keyCertSign cRLSign
  std::vector<std::string> key_usage;
  // serverAuth clientAuth codeSigning emailProtection timeStamping OCSPSigning
  std::vector<std::string> extended_key_usage;
  std::vector<std::string> dns_names, ip_addresses, emails;
  std::vector<std::string> crl_distribution_points;  // URIs
  std::vector<std::string> freshest_crl;             // URIs of the delta CRLs (RFC 5280 4.2.1.15)
  std::string ocsp_url;
  std::string ca_issuers_url;
  bool ocsp_no_check = false;
};

// Holds an issuer certificate and its key, and what every signature needs from them (key
// identifier, digest), so the per-certificate path only builds and signs. sign() may be called from
// several threads at once: it only reads the issuer and its key.
class CertificateSigner {
 public:
  // Takes its own references; fails if issuer_key is not the key of issuer.
  [[nodiscard]] static Result<CertificateSigner> create(X509* issuer, EVP_PKEY* issuer_key);

  // bad_request for unknown key usage / EKU names, invalid IPs or names, an empty validity period.
  [[nodiscard]] Result<ossl::UniquePtr<X509>> sign(const CertificateSpec& spec) const;

  X509* issuer() const { return issuer_.get(); }
  EVP_PKEY* issuer_key() const { return key_.get(); }

 private:
  CertificateSigner() = default;
  ossl::UniquePtr<X509> issuer_;
  ossl::UniquePtr<EVP_PKEY> key_;
  ossl::UniquePtr<X509_NAME> issuer_name_;  // a decoded copy: copying it again only reads it
  std::vector<unsigned char> key_id_;       // the issuer's subjectKeyIdentifier
  const EVP_MD* digest_ = nullptr;
};

// One-off form. issuer == nullptr: self-signed, spec.public_key must be the public half of
// issuer_key, and the authorityKeyIdentifier repeats the certificate's own key identifier.
[[nodiscard]] Result<ossl::UniquePtr<X509>> sign_certificate(const CertificateSpec& spec, X509* issuer,
                                                             EVP_PKEY* issuer_key);

}  // namespace ca::crypto
