#pragma once
// The one issuer: an issuer certificate and its SigningKey, through which every signature the CA
// makes goes: certificates (every kind), CRLs (crypto/crl_builder.hpp), OCSP basic responses and
// raw signatures (the audit log's checkpoints, the readiness probe). Callers name the key by URI
// (crypto/signing_key.hpp) and never touch it; a new key store changes nothing above this header.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/signing_key.hpp"

namespace ca::crypto {

// Move-only. Every signing method may be called from several threads at once.
class Issuer {
 public:
  // config error when `key` is not the key of `certificate`.
  [[nodiscard]] static Result<Issuer> create(ossl::UniquePtr<X509> certificate, SigningKey key);
  // The certificate from a PEM file, the key from its URI.
  [[nodiscard]] static Result<Issuer> open(const std::filesystem::path& certificate_file, std::string_view key_uri);
  // A root: `spec` certified by its own key (spec.public_key must be the public half of `key`).
  [[nodiscard]] static Result<Issuer> self_signed(const CertificateSpec& spec, SigningKey key);

  X509* certificate() const { return signer_.issuer(); }
  const SigningKey& key() const { return key_; }

  // bad_request for a spec CertificateSigner refuses (unknown usages, bad names, empty validity).
  [[nodiscard]] Result<ossl::UniquePtr<X509>> sign_certificate(const CertificateSpec& spec) const;
  // Signs `response` as its responder, with this certificate in it (RFC 6960 4.2.1: a delegated
  // responder's certificate travels with the response). SHA-256, or none for EdDSA.
  [[nodiscard]] Status sign_ocsp_response(OCSP_BASICRESP* response) const;
  // A raw signature over `data` (SigningKey::sign): the CRL's TBSCertList, audit checkpoints.
  [[nodiscard]] Result<std::vector<uint8_t>> sign(std::span<const uint8_t> data) const { return key_.sign(data); }

 private:
  Issuer(SigningKey key, CertificateSigner signer) : key_(std::move(key)), signer_(std::move(signer)) {}
  SigningKey key_;
  CertificateSigner signer_;  // the issuer's name and key identifier, decoded once
};

}  // namespace ca::crypto
