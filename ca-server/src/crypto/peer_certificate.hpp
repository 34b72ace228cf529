#pragma once
// The certificate a TLS peer presented and the transport verified against the client CAs, as an
// object: parsed once, at the handshake, and handed to the authority as it is (never as PEM text
// parsed again per request). Cheap to copy (one shared, immutable X509); empty when the peer
// presented none or it did not verify.
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

class PeerCertificate {
 public:
  PeerCertificate() = default;  // no certificate
  // Shares `certificate` (its reference count goes up); nullptr gives an empty one.
  static PeerCertificate of(X509* certificate);
  // For callers that hold PEM text (tools, tests): a certificate that does not parse is an error.
  [[nodiscard]] static Result<PeerCertificate> from_pem(std::string_view pem);

  bool empty() const { return !certificate_; }
  explicit operator bool() const { return !empty(); }
  // Not owned; valid while this object (or a copy) lives. nullptr when empty.
  X509* get() const { return certificate_.get(); }
  // The subject in RFC 4514 form (crypto::name_to_string), "" when empty.
  std::string subject_text() const;
  // The serial as lower-case hex without leading zeros, "" when empty.
  std::string serial_hex() const;

 private:
  explicit PeerCertificate(std::shared_ptr<X509> certificate) : certificate_(std::move(certificate)) {}
  std::shared_ptr<X509> certificate_;
};

}  // namespace ca::crypto
