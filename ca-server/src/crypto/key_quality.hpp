#pragma once
// Public keys a CA must not certify even though their CSR verifies: degenerate EC points, explicit
// curve parameters, RSA moduli that factor at once (even, small prime factor, two close primes),
// unusable exponents, and keys on an operator's block list. The profile judges sizes and curves;
// this judges whether the key is a key at all.
#include <filesystem>
#include <set>
#include <string>

#include <openssl/evp.h>

#include "core/error.hpp"

namespace ca::crypto {

struct KeyQualityPolicy {
  std::set<std::string> blocked_spki_sha256;  // lowercase hex SHA-256 of the DER SubjectPublicKeyInfo
};

// Every refusal is policy_violation with a message naming the defect. Checks, by key type:
//   EC: named curve (explicit parameters refused), point on the curve and not at infinity;
//   RSA and RSA-PSS: odd exponent in [65537, 2^256), odd modulus without a prime factor below
//     1000, not the product of two close primes (100 rounds of Fermat, as Let's Encrypt's goodkey);
//   Ed25519, Ed448: nothing beyond the block list;
//   every type: the block list. Other key types are refused.
// Costs about 20 µs for a P-256 key and 30-40 µs for an RSA-2048 key (see key_quality.cpp).
[[nodiscard]] Status check_key_quality(const EVP_PKEY* key, const KeyQualityPolicy& policy);

// The largest RSA modulus accepted at all (the profile sets the sizes it issues for).
inline constexpr int kMaxRsaModulusBits = 16384;

// The part of check_key_quality that bounds what verifying a signature with the key costs: for RSA
// and RSA-PSS, a modulus of at most kMaxRsaModulusBits and an odd exponent in [65537, 2^256). A CSR
// parser runs it before it verifies the request's signature (a 3,071-bit exponent makes one
// verification cost milliseconds). Other key types pass. Refusals are policy_violation.
[[nodiscard]] Status check_key_bounds(const EVP_PKEY* key);

// SHA-256 of the key's SubjectPublicKeyInfo in its canonical DER form, lowercase hex: EC points
// uncompressed on the named curve's OID, RSA as rsaEncryption with NULL parameters (the form Go's
// x509.MarshalPKIXPublicKey writes, so Let's Encrypt-style lists apply). "" if the key cannot be
// encoded.
[[nodiscard]] std::string spki_sha256_hex(const EVP_PKEY* key);

// One 64-hex-digit SHA-256 per line (either case; stored lowercase), blank lines and '#' comments
// allowed, surrounding whitespace ignored. Anything else is config naming the file and line; a file
// that cannot be read is io.
[[nodiscard]] Result<std::set<std::string>> load_spki_blocklist(const std::filesystem::path& file);

// True for an EC key whose group is encoded with explicit parameters (or has no name). OpenSSL 3
// names explicit parameters that match a known curve ("prime256v1"), so the name alone says nothing.
[[nodiscard]] bool has_explicit_curve_parameters(const EVP_PKEY* key);

}  // namespace ca::crypto
