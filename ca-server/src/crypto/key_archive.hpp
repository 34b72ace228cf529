#pragma once
// Archived private keys (docs/key-archival.md): each key, as PKCS#8 DER, is encrypted under its
// own AES-256-GCM data key with the record's identity as associated data; the data key is
// wrapped to the storage key with RSA-OAEP-SHA-256. Also the transport envelope clients use to
// send a key for archival (CMS EnvelopedData to the transport certificate).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

struct SealedKey {
  std::string storage_key_id;             // public_key_id() of the storage key that wraps the data key
  std::vector<uint8_t> wrapped_data_key;  // RSA-OAEP-SHA-256
  std::vector<uint8_t> iv;                // 12 bytes
  std::vector<uint8_t> ciphertext;        // the PKCS#8 DER, AES-256-GCM
  std::vector<uint8_t> tag;               // 16 bytes
};

// Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo.
[[nodiscard]] std::string public_key_id(EVP_PKEY* key);

// `aad`: what binds the sealed key to its record (its id, the certificate serial): a sealed key
// moved to another record does not open.
[[nodiscard]] Result<SealedKey> seal_private_key(EVP_PKEY* key, EVP_PKEY* storage_key, std::string_view aad);
// bad_request ("fails its integrity check") when anything was altered: the tag, the ciphertext,
// the wrapped data key, the associated data; config when it was sealed for another storage key.
[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> unseal_private_key(const SealedKey& sealed, EVP_PKEY* storage_key,
                                                                   std::string_view aad);

// One attribute value: "CAK1" + five length-prefixed fields. decode fails with bad_request.
[[nodiscard]] std::vector<uint8_t> encode_sealed_key(const SealedKey& sealed);
[[nodiscard]] Result<SealedKey> decode_sealed_key(std::span<const uint8_t> bytes);

// The private key inside a CMS EnvelopedData (PEM or DER) addressed to `transport_cert`
// (`openssl cms -encrypt -recip transport.pem`; RSA PKCS#1 v1.5 or RSA-OAEP key transport). The
// content is the key as PEM or DER (PKCS#8 or traditional), unencrypted. bad_request when the
// envelope is malformed, addressed to another certificate, or holds no key.
[[nodiscard]] Result<ossl::UniquePtr<EVP_PKEY>> open_key_envelope(std::string_view envelope, X509* transport_cert,
                                                                  EVP_PKEY* transport_key);

// The unencrypted PKCS#8 DER of a private key (EST serverkeygen hands it out over TLS).
[[nodiscard]] Result<std::vector<uint8_t>> private_key_pkcs8_der(EVP_PKEY* key);

// True when `private_key` is the private half of `public_key`.
[[nodiscard]] bool keys_match(EVP_PKEY* private_key, EVP_PKEY* public_key);

}  // namespace ca::crypto
