#pragma once
// X.509 v2 CRLs (RFC 5280 section 5) written straight to DER: a million entries cost one buffer,
// not a million OpenSSL objects. Signed through the CA's Issuer (crypto/issuer.hpp).
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/error.hpp"
#include "crypto/issuer.hpp"

namespace ca::crypto {

// One revoked certificate, compact (48 bytes) so that a million of them stay small in memory.
struct CrlEntry {
  std::array<uint8_t, 20> serial{};  // big-endian magnitude, left-aligned
  uint8_t serial_length = 0;
  uint8_t reason = 0;           // RFC 5280 CRLReason; 0 (unspecified) is left out of the entry
  int64_t revoked_at = 0;       // seconds since the epoch
  int64_t invalidity_date = 0;  // 0 = none

  static std::optional<CrlEntry> from_hex(std::string_view serial_hex, int64_t revoked_at, int reason,
                                          int64_t invalidity_date = 0);
  std::span<const uint8_t> serial_bytes() const { return {serial.data(), serial_length}; }
  // Orders by numeric serial value.
  bool operator<(const CrlEntry& o) const;
  bool same_serial(const CrlEntry& o) const;
};

struct CrlParams {
  uint64_t crl_number = 1;
  std::optional<uint64_t> delta_base;  // set: a delta CRL against this full CRL number
  std::chrono::system_clock::time_point this_update, next_update;
  // Set: the CRL covers only the certificates whose CRL distribution point is this URI (a partition,
  // RFC 5280 5.2.5), and says so in a critical Issuing Distribution Point extension.
  std::string issuing_distribution_point;
  // Set: a full CRL names where its delta CRLs are (Freshest CRL, RFC 5280 5.2.6). Ignored for deltas.
  std::string freshest_crl;
};

// bad_request when a URI in params is not printable ASCII (an IA5String without spaces).
// The CRL names issuer.certificate() (its subject, its key identifier) and is signed by its key.
[[nodiscard]] Result<std::vector<uint8_t>> build_crl(const Issuer& issuer, const CrlParams& params,
                                                     std::span<const CrlEntry> entries);

// DER AlgorithmIdentifier for the signature the key makes (ECDSA with SHA-2, RSA PKCS#1 v1.5, Ed25519).
Result<std::vector<uint8_t>> signature_algorithm_der(EVP_PKEY* key);

}  // namespace ca::crypto
