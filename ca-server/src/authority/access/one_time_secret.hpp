#pragma once
// Secrets handed out once (per-request secrets, enrollment codes): random, shown to the holder
// once, stored only as a salted hash. They carry 128 random bits, so a fast salted hash is
// enough: nobody can search that space, whatever the hash costs.
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca::authority {

// `bytes` bytes from the CSPRNG as lowercase hex.
Result<std::string> random_hex(std::size_t bytes);
// "sha256$<salt hex>$<hex of SHA-256(salt || secret)>"
Result<std::string> hash_secret(std::string_view secret);
// Constant-time comparison against a stored hash_secret value; false for a malformed one.
bool secret_matches(std::string_view stored_hash, std::string_view secret);

}  // namespace ca::authority
