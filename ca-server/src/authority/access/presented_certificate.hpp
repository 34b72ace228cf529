#pragma once
// A TLS client certificate presented to this CA, checked at request time (not per handshake: a
// resumed TLS session carries the certificate of its first handshake, and the certificate may
// have been revoked since). Used for agents, for renewal by a certificate holder, and for any
// other role that is held by a certificate.
#include <string>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/peer_certificate.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct PresentedCertificate {
  ossl::UniquePtr<X509> certificate;
  std::string serial_hex;
  std::string subject_dn;
  std::string member_value;  // how roles (groups) name this certificate
  store::CertificateRecord record;
};

// How a role names a certificate: "serial=<hex>;sha256=<hex of the DER certificate>". A role holds
// certificates, never bare subject names: anyone can ask for a certificate with a borrowed name.
std::string certificate_member_value(X509* certificate);

// 401 without a certificate; 403 for one this CA did not issue, one outside its validity period,
// one the directory does not know, or one whose status there is not VALID (revoked, on hold).
// `who` names the role in messages ("an agent of this CA").
Result<PresentedCertificate> check_presented_certificate(store::CaStore& store, X509* ca_certificate,
                                                         const crypto::PeerCertificate& peer, std::string_view who);

}  // namespace ca::authority
