#include "authority/access/presented_certificate.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>

#include "crypto/pem.hpp"

namespace ca::authority {

std::string certificate_member_value(X509* certificate) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(certificate, EVP_sha256(), digest, &length);
  std::string hex;
  hex.reserve(std::size_t{2} * length);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return fmt::format("serial={};sha256={}", crypto::serial_to_hex(X509_get0_serialNumber(certificate)), hex);
}

Result<PresentedCertificate> check_presented_certificate(store::CaStore& store, X509* ca_certificate,
                                                         const crypto::PeerCertificate& peer, std::string_view who) {
  if (peer.empty())
    return fail(Error::unauthorized(fmt::format("this operation needs the TLS client certificate of {}", who)));
  auto cert = ossl::up_ref(peer.get());
  // The TLS layer verified the chain at the handshake; check again that it is ours.
  if (X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca_certificate)) != 0 ||
      X509_verify(cert.get(), X509_get0_pubkey(ca_certificate)) != 1)
    return fail(Error::forbidden("the client certificate was not issued by this CA"));
  PresentedCertificate out;
  out.serial_hex = crypto::serial_to_hex(X509_get0_serialNumber(cert.get()));
  out.subject_dn = crypto::name_to_string(X509_get_subject_name(cert.get()));
  // Validity now, not at the handshake: a long-lived connection may outlast the certificate.
  if (X509_cmp_current_time(X509_get0_notBefore(cert.get())) >= 0)
    return fail(Error::forbidden(fmt::format("the client certificate 0x{} is not valid yet", out.serial_hex)));
  if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0)
    return fail(Error::forbidden(fmt::format("the client certificate 0x{} has expired", out.serial_hex)));
  auto record = store.find_certificate(out.serial_hex);
  if (!record) {
    if (record.error().is(ErrorCode::not_found))
      return fail(Error::forbidden(fmt::format("the client certificate 0x{} is not known to this CA", out.serial_hex)));
    return fail(record.error());
  }
  // The stored certificate must be this very certificate (same serial, same bytes).
  auto der = crypto::certificate_to_der(cert.get());
  if (der != record->der)
    return fail(Error::forbidden(
        fmt::format("the client certificate 0x{} differs from the one this CA issued", out.serial_hex)));
  if (record->status != "VALID")
    return fail(Error::forbidden(fmt::format("the client certificate 0x{} is {}", out.serial_hex, record->status)));
  out.member_value = certificate_member_value(cert.get());
  out.record = std::move(*record);
  out.certificate = std::move(cert);
  return out;
}

}  // namespace ca::authority
