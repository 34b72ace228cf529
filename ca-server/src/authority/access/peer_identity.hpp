#pragma once
// Who is on the other end of a request, as the transport knows it. Every front end (REST, Dogtag's
// end-entity interface, EST; ACME, SCEP and CMP next) hands the authority this, never PEM text.
#include <string>

#include "crypto/peer_certificate.hpp"

namespace ca::authority {

struct PeerIdentity {
  crypto::PeerCertificate certificate;  // verified by the TLS layer against the CA; empty without one
  std::string address;  // the caller's IP: refusals of callers without a certificate are counted under it
};

}  // namespace ca::authority
