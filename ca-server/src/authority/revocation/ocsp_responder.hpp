#pragma once
// RFC 6960 responder: answers good / revoked (time, reason) / unknown from the directory records,
// echoes the nonce, signs with the OCSP signing certificate (a delegated responder with
// id-kp-OCSPSigning and ocsp-nocheck). Every input gets a well-formed OCSPResponse: malformed
// requests get malformedRequest, a directory outage tryLater.
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include <openssl/ocsp.h>

#include "core/openssl_owners.hpp"
#include "crypto/issuer.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

class OcspResponder {
 public:
  // ca_cert and the signer (the OCSP signing certificate and its key) are borrowed; they outlive
  // the responder.
  OcspResponder(store::CaStore& store, X509* ca_cert, const crypto::Issuer& signer);
  std::vector<uint8_t> respond(std::span<const uint8_t> request_der);
  // The answer for "the status cannot be read now": an OCSPResponse with responseStatus tryLater.
  std::vector<uint8_t> try_later() { return status_only(OCSP_RESPONSE_STATUS_TRYLATER); }
  // How long a "good" answer may be cached by clients (nextUpdate).
  void set_validity(std::chrono::seconds v) { validity_ = v; }

 private:
  std::vector<uint8_t> status_only(int response_status);
  store::CaStore& store_;
  X509* ca_cert_;
  const crypto::Issuer& signer_;
  std::chrono::seconds validity_{3600};
};

}  // namespace ca::authority
