#pragma once
// PKCS#10 certificate requests as clients send them: parsed, verified and described.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/keys.hpp"

namespace ca::crypto {

struct ParsedCsr {
  ossl::UniquePtr<EVP_PKEY> public_key;
  PublicKeyInfo key;
  ossl::UniquePtr<X509_NAME> subject;
  std::string subject_text;  // name_to_string(subject)
  // From the subjectAltName of the extensionRequest attribute; IPs in inet_ntop form.
  std::vector<std::string> dns_names, ip_addresses, emails;
  std::string signature_digest;  // "SHA256", "SHA384", ...; "" for EdDSA
  std::vector<uint8_t> der;      // the request exactly as received
};

// Accepts one PEM block labelled "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST" (explanatory
// text before it is allowed, anything but whitespace after it is not). The signature must verify
// with a digest stronger than SHA-1. Key sizes and curves are reported in `key`, not judged: the
// profile does that. Every rejection is bad_request with a message meant for the client.
[[nodiscard]] Result<ParsedCsr> parse_csr_pem(std::string_view pem, std::size_t max_bytes = 32768);
// The same checks for a DER request (EST sends base64 DER); the whole buffer must be the request.
[[nodiscard]] Result<ParsedCsr> parse_csr_der(std::span<const uint8_t> der, std::size_t max_bytes = 32768);

// What a renewal "by serial" asks for: the key, subject and names of a certificate we issued,
// with no signature of the requester (the certificate's issuance proved possession of the key).
// `der` holds the certificate, not a request.
[[nodiscard]] Result<ParsedCsr> request_from_certificate(X509* cert);

}  // namespace ca::crypto
