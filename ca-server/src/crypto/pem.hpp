#pragma once
// Encodings and files: PEM/DER certificates and keys, atomic file writes, distinguished names,
// fingerprints and serial numbers.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

// Parsing fails with bad_request: the bytes usually come from outside.
[[nodiscard]] Result<ossl::UniquePtr<X509>> parse_certificate_pem(std::string_view pem);
// The whole buffer must be one certificate (trailing bytes are an error).
[[nodiscard]] Result<ossl::UniquePtr<X509>> parse_certificate_der(std::span<const uint8_t> der);
[[nodiscard]] std::string certificate_to_pem(X509* cert);
[[nodiscard]] std::vector<uint8_t> certificate_to_der(X509* cert);

// Unencrypted keys only; an encrypted one fails with a message saying so.
[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> parse_private_key_pem(std::string_view pem);
// PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted.
[[nodiscard]] std::string private_key_to_pem(EVP_PKEY* key);

// A file that cannot be read fails with io; one that does not hold what it should, with config.
[[nodiscard]] Result<ossl::UniquePtr<X509>> load_certificate_file(const std::filesystem::path& path);
[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> load_private_key_file(const std::filesystem::path& path);

// Atomic replacement: a temporary file next to `path` is created (O_CREAT|O_EXCL) with exactly
// `mode`, written, fsync'ed and renamed over `path`; readers see the old file or the new one, never
// a partial one. Errors are io and name the file, never its content.
[[nodiscard]] Status write_text_file_atomic(const std::filesystem::path& path, std::string_view content, mode_t mode);
[[nodiscard]] Status write_private_key_file(const std::filesystem::path& path, EVP_PKEY* key);  // 0600, PKCS#8
[[nodiscard]] Status write_certificate_file(const std::filesystem::path& path, X509* cert);     // 0644, PEM

// Digests of the DER certificate: lowercase hex, no colons.
[[nodiscard]] std::string sha1_fingerprint_hex(X509* cert);
[[nodiscard]] std::string sha256_fingerprint_hex(X509* cert);

// RFC 4514 form, most specific RDN first ("CN=Demo CA,O=Example"); UTF-8 stays readable.
[[nodiscard]] std::string name_to_string(const X509_NAME* name);
// Inverse of name_to_string: RFC 4514 escapes ("\," and "\c3\a9"), multi-valued RDNs ("+"),
// attribute types by short name, long name or dotted OID (case-insensitive short names).
// Fails with bad_request on unknown types, empty values or a malformed string.
[[nodiscard]] Result<ossl::UniquePtr<X509_NAME>> parse_name(std::string_view text);

// Lowercase hex without leading zeros; "0" for zero, a leading '-' for a negative serial.
// Lower-case hex of bytes.
[[nodiscard]] std::string to_hex(std::span<const unsigned char> bytes);
[[nodiscard]] std::string serial_to_hex(const ASN1_INTEGER* serial);
// Accepts 1..40 significant hex digits (either case) of a positive number that fits the 20 octets
// RFC 5280 allows; rejects empty, non-hex, zero and longer input with bad_request.
[[nodiscard]] Result<ossl::UniquePtr<ASN1_INTEGER>> serial_from_hex(std::string_view hex);

}  // namespace ca::crypto
