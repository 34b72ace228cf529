#pragma once
// Certificate requests with bad keys whose self-signatures genuinely verify: the CSRs a careless or
// hostile client can send and a CA must refuse on the key, not on the signature. Each returns one
// PEM "CERTIFICATE REQUEST" block with subject CN=cn and, when dns_san is set, a subjectAltName
// DNS:cn, signed with SHA-256. Built in-process with OpenSSL (no shell); failures throw
// std::runtime_error with OpenSSL's error queue, like TempDir. Every call takes a few
// milliseconds: the RSA moduli (all 2048 bits) are built from fixed primes, so each RSA generator
// returns the same key on every call; EC and Ed25519 keys are fresh each time.
#include <string>
#include <string_view>

namespace ca::testing {

// For contrast: keys a CA accepts. curve is an OpenSSL group name ("P-256", "P-384", "P-521").
std::string csr_good_ec(const std::string& cn, const std::string& curve = "P-256", bool dns_san = true);
// 2048 and 3072 bits: fixed keys from fixed primes; any other size is generated once per process.
std::string csr_good_rsa(const std::string& cn, int bits = 2048, bool dns_san = true);
std::string csr_good_ed25519(const std::string& cn, bool dns_san = true);

// P-256 with Q = the point at infinity (SubjectPublicKeyInfo BIT STRING 00 00). The ECDSA
// signature is crafted so that it verifies for Q = ∞: R = kG, r = x(R), s = e·k⁻¹, hence
// u1·G + u2·∞ = e·s⁻¹·G = kG.
std::string csr_ec_point_at_infinity(const std::string& cn, bool dns_san = true);
// A P-256 key written with explicit curve parameters (a SEQUENCE instead of the curve's OID).
std::string csr_ec_explicit_parameters(const std::string& cn, bool dns_san = true);
// RSA-2048 modulus with public exponent 1 (so d = 1: the "signature" is the padded digest).
std::string csr_rsa_exponent_one(const std::string& cn, bool dns_san = true);
// RSA-2048 modulus with a 3,071-bit public exponent and a signature that does not verify (made
// with d = 1): a parser must refuse the exponent without verifying the signature.
std::string csr_rsa_huge_exponent_bad_signature(const std::string& cn);
// n = 2p for a 2047-bit prime p, e = 65537, d = e⁻¹ mod (p − 1). OpenSSL cannot sign with an even
// modulus (Montgomery arithmetic), so the PKCS#1 v1.5 signature is computed with BN_mod_exp; it
// is mathematically valid, but OpenSSL cannot verify it either.
std::string csr_rsa_even_modulus(const std::string& cn, bool dns_san = true);
// n = 3p for a 2047-bit prime p, e = 65537, d = e⁻¹ mod λ(n).
std::string csr_rsa_small_factor(const std::string& cn, bool dns_san = true);
// n = p·q with q the next prime after a 1024-bit p: Fermat's method factors it in one round.
std::string csr_rsa_close_primes(const std::string& cn, bool dns_san = true);

// Signature algorithms that do not belong to the key. The self-signature is valid in each: the
// signatureAlgorithm field lies outside the signed data, so relabelling it keeps the signature.
// A valid P-256 CSR relabelled sha256WithRSAEncryption.
std::string csr_ecdsa_signed_labelled_rsa(const std::string& cn, bool dns_san = true);
// A valid RSA-2048 CSR (sha256WithRSAEncryption) relabelled ecdsa-with-SHA256.
std::string csr_rsa_signed_labelled_ecdsa(const std::string& cn, bool dns_san = true);

// DER AlgorithmIdentifiers for relabelling.
inline constexpr std::string_view kSha256WithRsaNull{
    "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00", 15};
inline constexpr std::string_view kSha256WithRsaAbsent{"\x30\x0b\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", 13};
inline constexpr std::string_view kEcdsaWithSha256{"\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02", 12};
inline constexpr std::string_view kEcdsaWithSha256Null{"\x30\x0c\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x05\x00", 14};
inline constexpr std::string_view kEd25519Null{"\x30\x07\x06\x03\x2b\x65\x70\x05\x00", 9};

// The same request with its outer signatureAlgorithm replaced by `algorithm_der` (one DER
// AlgorithmIdentifier); the signed CertificationRequestInfo and the signature are kept byte for byte.
std::string replace_signature_algorithm(const std::string& pem, std::string_view algorithm_der);

}  // namespace ca::testing
