#include "authority/issuance/serial_text.hpp"

#include <openssl/rand.h>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "core/openssl_owners.hpp"
#include "store/records.hpp"

namespace ca::authority {

std::string decimal_text(std::string_view canonical_hex) {
  BIGNUM* raw = nullptr;
  std::string hex(canonical_hex);
  if (hex.empty() || BN_hex2bn(&raw, hex.c_str()) != static_cast<int>(hex.size())) {
    BN_free(raw);
    return "0";
  }
  ossl::UniquePtr<BIGNUM> bn(raw);
  char* d = BN_bn2dec(bn.get());
  if (!d) return "0";
  std::string out(d);
  OPENSSL_free(d);
  return out;
}

Result<std::string> parse_number_text(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return fail(Error::bad_request(
        fmt::format("'{}' is not a valid {} (use 0x-prefixed hex or decimal)", text.substr(0, 64), what)));
  };
  if (text.empty() || text.size() > 64) return bad();
  const bool hex = text.starts_with("0x") || text.starts_with("0X");
  std::string digits(hex ? text.substr(2) : text);
  if (digits.empty()) return bad();
  for (char c : digits)
    if (hex ? !std::isxdigit(static_cast<unsigned char>(c)) : !std::isdigit(static_cast<unsigned char>(c)))
      return bad();
  BIGNUM* raw = nullptr;
  int n = hex ? BN_hex2bn(&raw, digits.c_str()) : BN_dec2bn(&raw, digits.c_str());
  ossl::UniquePtr<BIGNUM> bn(raw);
  if (n == 0 || !bn) return bad();
  if (BN_num_bits(bn.get()) > 160) return bad();
  char* h = BN_bn2hex(bn.get());
  std::string out = store::canonical_hex(h);
  OPENSSL_free(h);
  return out;
}

Result<std::string> random_serial_hex() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return fail(Error::crypto("the CSPRNG failed"));
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x01);  // positive, never short
  std::string hex;
  for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

}  // namespace ca::authority
