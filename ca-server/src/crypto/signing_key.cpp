#include "crypto/signing_key.hpp"

#include <cctype>

#include <fmt/format.h>

#include "core/files.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

// The scheme of a URI (RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"), or "" for a
// plain path: one with a '/' (or nothing) before its first ':'.
std::string_view scheme_of(std::string_view uri) {
  const std::size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  const std::string_view scheme = uri.substr(0, colon);
  if (!std::isalpha(static_cast<unsigned char>(scheme.front()))) return {};
  for (char c : scheme)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
  return scheme;
}

// Names the key without its attributes: a pkcs11: URI may carry a PIN (pin-value).
std::string key_name_for_errors(std::string_view uri, std::string_view scheme) {
  return scheme.empty() || scheme == "file" ? std::string(uri) : std::string(scheme) + ":...";
}

}  // namespace

SigningKey::SigningKey(ossl::UniquePtr<EVP_PKEY> key, std::string uri)
    : key_(std::move(key)), uri_(std::move(uri)), digest_(signing_digest_for(key_.get())) {}

Result<SigningKey> SigningKey::from_key(ossl::UniquePtr<EVP_PKEY> key, std::string uri) {
  if (!key) return fail(Error::internal("a signing key needs a key"));
  return SigningKey(std::move(key), std::move(uri));
}

Result<std::vector<uint8_t>> SigningKey::sign(std::span<const uint8_t> data) const {
  ossl::UniquePtr<EVP_MD_CTX> context(EVP_MD_CTX_new());
  std::size_t length = 0;
  if (!context || EVP_DigestSignInit(context.get(), nullptr, digest_, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(context.get(), nullptr, &length, data.data(), data.size()) != 1)
    return fail(Error::crypto(
        fmt::format("the key {} does not sign: {}", uri_.empty() ? "in memory" : uri_, ossl::drain_errors())));
  std::vector<uint8_t> signature(length);
  if (EVP_DigestSign(context.get(), signature.data(), &length, data.data(), data.size()) != 1)
    return fail(Error::crypto(
        fmt::format("the key {} does not sign: {}", uri_.empty() ? "in memory" : uri_, ossl::drain_errors())));
  signature.resize(length);
  return signature;
}

Result<ossl::UniquePtr<EVP_PKEY>> open_private_key(std::string_view uri) {
  if (uri.empty()) return fail(Error::config("no key named (an empty key URI)"));
  const std::string_view scheme = scheme_of(uri);
  if (scheme.empty()) return load_private_key_file(std::filesystem::path(uri));
  if (scheme == "file") {
    CA_TRY(std::filesystem::path path, path_of_file_uri(uri));
    return load_private_key_file(path);
  }
  if (scheme == "pkcs11")
    return fail(Error::config(fmt::format("'{}': no PKCS#11 key store in this build (keys are named file:/path)",
                                          key_name_for_errors(uri, scheme))));
  return fail(Error::config(fmt::format("'{}': unknown key store '{}:' (this build opens file: keys)",
                                        key_name_for_errors(uri, scheme), scheme)));
}

Result<SigningKey> open_signing_key(std::string_view uri) {
  CA_TRY(auto key, open_private_key(uri));
  return SigningKey::from_key(std::move(key), std::string(uri));
}

}  // namespace ca::crypto
