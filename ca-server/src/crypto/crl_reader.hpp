#pragma once
// Reads the entries of a DER X.509 CRL (RFC 5280 section 5) straight from its bytes, the
// counterpart of build_crl: a CRL master reads the CRLs another master published (up to a million
// entries, ~47 MB) without d2i_X509_CRL, which makes one OpenSSL object per entry (hundreds of MB).
//
// read_crl does NOT verify the signature: callers read CRLs from their own directory, signed by
// their own CA key. Where that is not enough, check with crl_signed_by first.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <openssl/x509.h>

#include "core/error.hpp"
#include "crypto/crl_builder.hpp"

namespace ca::crypto {

struct CrlContents {
  uint64_t number = 0;                 // CRL Number extension (0 if absent)
  std::optional<uint64_t> delta_base;  // Delta CRL Indicator extension: this is a delta CRL
  int64_t this_update = 0;             // seconds since the epoch
  int64_t next_update = 0;             // seconds since the epoch, 0 if absent
  std::vector<CrlEntry> entries;       // in the CRL's order; reason 0 and invalidity date 0 when absent
};

// Strict DER: any malformed input (truncated, wrong tags, lengths past the end, indefinite lengths,
// trailing bytes, non-minimal encodings, a CRL Number or serial too large, a negative serial) is an
// Error::bad_request naming the field and its byte offset. Extensions it does not know are skipped
// when non-critical and refused when critical (their meaning, e.g. an Issuing Distribution Point or
// a Certificate Issuer, would change what the entries say).
[[nodiscard]] Result<CrlContents> read_crl(std::span<const uint8_t> der);

// Whether `der` is a CRL whose signature verifies with `issuer`'s public key (ECDSA and RSA
// PKCS#1 v1.5 with SHA-2, Ed25519). Hashes the TBSCertList bytes in place: no OpenSSL CRL object.
// Checks the signature only, not the issuer name or the validity period.
bool crl_signed_by(std::span<const uint8_t> der, X509* issuer);

}  // namespace ca::crypto
