#include "authority/access/one_time_secret.hpp"

#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace ca::authority {

namespace {

std::string to_hex(const unsigned char* data, std::size_t size) {
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) out += fmt::format("{:02x}", data[i]);
  return out;
}

std::string digest_hex(std::string_view salt_hex, std::string_view secret) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  std::string input = std::string(salt_hex) + std::string(secret);
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  return to_hex(digest, length);
}

}  // namespace

Result<std::string> random_hex(std::size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) return fail(Error::crypto("the CSPRNG failed"));
  return to_hex(buffer.data(), bytes);
}

Result<std::string> hash_secret(std::string_view secret) {
  CA_TRY(std::string salt, random_hex(16));
  return fmt::format("sha256${}${}", salt, digest_hex(salt, secret));
}

bool secret_matches(std::string_view stored, std::string_view secret) {
  if (!stored.starts_with("sha256$")) return false;
  std::string_view rest = stored.substr(7);
  auto dollar = rest.find('$');
  if (dollar == std::string_view::npos) return false;
  std::string expected = digest_hex(rest.substr(0, dollar), secret);
  std::string_view stored_digest = rest.substr(dollar + 1);
  return stored_digest.size() == expected.size() &&
         CRYPTO_memcmp(stored_digest.data(), expected.data(), expected.size()) == 0;
}

}  // namespace ca::authority
