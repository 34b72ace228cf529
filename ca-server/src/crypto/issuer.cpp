#include "crypto/issuer.hpp"

#include <fmt/format.h>

#include "crypto/pem.hpp"

namespace ca::crypto {

Result<Issuer> Issuer::create(ossl::UniquePtr<X509> certificate, SigningKey key) {
  if (!certificate) return fail(Error::internal("an issuer needs its certificate"));
  if (X509_check_private_key(certificate.get(), key.handle()) != 1) {
    ossl::drain_errors();
    return fail(Error::config(fmt::format("the key {} is not the key of the certificate '{}'",
                                          key.uri().empty() ? "given" : key.uri(),
                                          name_to_string(X509_get_subject_name(certificate.get())))));
  }
  CA_TRY(auto signer, CertificateSigner::create(certificate.get(), key.handle()));
  return Issuer(std::move(key), std::move(signer));
}

Result<Issuer> Issuer::open(const std::filesystem::path& certificate_file, std::string_view key_uri) {
  CA_TRY(auto certificate, load_certificate_file(certificate_file));
  CA_TRY(auto key, open_signing_key(key_uri));
  auto issuer = create(std::move(certificate), std::move(key));
  if (!issuer) return fail(issuer.error().context(certificate_file.string()));
  return issuer;
}

Result<Issuer> Issuer::self_signed(const CertificateSpec& spec, SigningKey key) {
  CA_TRY(auto certificate, crypto::sign_certificate(spec, nullptr, key.handle()));
  return create(std::move(certificate), std::move(key));
}

Result<ossl::UniquePtr<X509>> Issuer::sign_certificate(const CertificateSpec& spec) const { return signer_.sign(spec); }

Status Issuer::sign_ocsp_response(OCSP_BASICRESP* response) const {
  const EVP_MD* digest = key_.digest() ? EVP_sha256() : nullptr;
  if (OCSP_basic_sign(response, certificate(), key_.handle(), digest, nullptr, 0) != 1)
    return fail(Error::crypto("cannot sign the OCSP response: " + ossl::drain_errors()));
  return ok();
}

}  // namespace ca::crypto
