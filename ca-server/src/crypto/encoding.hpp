#pragma once
// Wire encodings the enrollment protocols share: base64 (RFC 4648, with or without line breaks)
// and PKCS#7 "certs-only" bundles (RFC 2315 signedData with no signers, as EST and Dogtag send
// certificate chains).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

// Standard alphabet with padding; `line_length` 0 = one line (EST clients need that), else a
// newline after every `line_length` characters and at the end.
[[nodiscard]] std::string base64_encode(std::span<const uint8_t> bytes, std::size_t line_length = 0);
// Standard alphabet, padding required; spaces, tabs and line breaks anywhere are skipped. Anything
// else (URL-safe alphabet, a stray character, a bad length) is bad_request naming `what`.
[[nodiscard]] Result<std::vector<uint8_t>> base64_decode(std::string_view text, std::string_view what,
                                                         std::size_t max_decoded = 1 << 20);

// DER of a degenerate signedData holding `certificates` in order (no content, no signers).
[[nodiscard]] Result<std::vector<uint8_t>> certs_only_pkcs7(std::span<X509* const> certificates);
// The certificates of a PKCS#7 bundle (DER), in order. bad_request when it is not one.
[[nodiscard]] Result<std::vector<ossl::UniquePtr<X509>>> certificates_of_pkcs7(std::span<const uint8_t> der);

}  // namespace ca::crypto
