#include "crypto/peer_certificate.hpp"

#include "crypto/pem.hpp"

namespace ca::crypto {

PeerCertificate PeerCertificate::of(X509* certificate) {
  if (!certificate) return {};
  X509_up_ref(certificate);
  return PeerCertificate(std::shared_ptr<X509>(certificate, X509_free));
}

Result<PeerCertificate> PeerCertificate::from_pem(std::string_view pem) {
  CA_TRY(auto parsed, parse_certificate_pem(pem));
  return PeerCertificate(std::shared_ptr<X509>(parsed.release(), X509_free));
}

std::string PeerCertificate::subject_text() const {
  return certificate_ ? name_to_string(X509_get_subject_name(certificate_.get())) : std::string();
}

std::string PeerCertificate::serial_hex() const {
  return certificate_ ? serial_to_hex(X509_get0_serialNumber(certificate_.get())) : std::string();
}

}  // namespace ca::crypto
