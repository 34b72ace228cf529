#include "crypto/encoding.hpp"

#include <algorithm>
#include <array>
#include <climits>

#include <fmt/format.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "crypto/extra_owners.hpp"

namespace ca::crypto {

namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decode_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i)
    t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kDecode = decode_table();

}  // namespace

std::string base64_encode(std::span<const uint8_t> bytes, std::size_t line_length) {
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3) + (line_length ? bytes.size() / line_length + 2 : 0));
  std::size_t column = 0;
  auto put = [&](char c) {
    out.push_back(c);
    if (line_length && ++column == line_length) {
      out.push_back('\n');
      column = 0;
    }
  };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    put(kAlphabet[(v >> 18) & 63]);
    put(kAlphabet[(v >> 12) & 63]);
    put(kAlphabet[(v >> 6) & 63]);
    put(kAlphabet[v & 63]);
  }
  if (std::size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (rest == 2) v |= uint32_t{bytes[i + 1]} << 8;
    put(kAlphabet[(v >> 18) & 63]);
    put(kAlphabet[(v >> 12) & 63]);
    put(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    put('=');
  }
  if (line_length && column != 0) out.push_back('\n');
  return out;
}

Result<std::vector<uint8_t>> base64_decode(std::string_view text, std::string_view what, std::size_t max_decoded) {
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  uint32_t accumulator = 0;
  int count = 0, padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++padding;
      accumulator <<= 6;
      ++count;
    } else {
      int8_t v = kDecode[static_cast<unsigned char>(c)];
      if (v < 0 || padding > 0)
        return fail(Error::bad_request(fmt::format("{} is not base64: unexpected character at offset {}", what, i)));
      accumulator = (accumulator << 6) | static_cast<uint32_t>(v);
      ++count;
    }
    if (count == 4) {
      if (padding > 2) return fail(Error::bad_request(fmt::format("{} is not base64: too much padding", what)));
      out.push_back(static_cast<uint8_t>(accumulator >> 16));
      if (padding < 2) out.push_back(static_cast<uint8_t>(accumulator >> 8));
      if (padding < 1) out.push_back(static_cast<uint8_t>(accumulator));
      if (out.size() > max_decoded)
        return fail(Error::bad_request(fmt::format("{} is larger than {} bytes", what, max_decoded)));
      accumulator = 0;
      count = 0;
      if (padding > 0) padding = 3;  // nothing but whitespace may follow
    }
  }
  if (count != 0)
    return fail(Error::bad_request(fmt::format("{} is not base64: its length is not a multiple of 4", what)));
  if (out.empty()) return fail(Error::bad_request(fmt::format("{} is empty", what)));
  return out;
}

Result<std::vector<uint8_t>> certs_only_pkcs7(std::span<X509* const> certificates) {
  detail::Owned<PKCS7, PKCS7_free> p7(PKCS7_new());
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1)
    return fail(Error::crypto("cannot make a PKCS#7 bundle: " + ossl::drain_errors()));
  // Degenerate certs-only form (RFC 5272 4.1): the content type is id-data and the content absent.
  p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
  for (X509* cert : certificates)
    if (PKCS7_add_certificate(p7.get(), cert) != 1)
      return fail(Error::crypto("cannot add a certificate to a PKCS#7 bundle: " + ossl::drain_errors()));
  unsigned char* der = nullptr;
  int len = i2d_PKCS7(p7.get(), &der);
  if (len <= 0) return fail(Error::crypto("cannot encode a PKCS#7 bundle: " + ossl::drain_errors()));
  detail::OpensslBytes owned(der);
  return std::vector<uint8_t>(der, der + len);
}

Result<std::vector<ossl::UniquePtr<X509>>> certificates_of_pkcs7(std::span<const uint8_t> der) {
  if (der.size() > static_cast<std::size_t>(INT_MAX)) return fail(Error::bad_request("PKCS#7 bundle too large"));
  const unsigned char* p = der.data();
  detail::Owned<PKCS7, PKCS7_free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der.size())));
  if (!p7 || p != der.data() + der.size())
    return fail(Error::bad_request("not a DER PKCS#7 bundle: " + ossl::drain_errors()));
  if (!PKCS7_type_is_signed(p7.get()) || !p7->d.sign)
    return fail(Error::bad_request("the PKCS#7 bundle is not signedData"));
  std::vector<ossl::UniquePtr<X509>> out;
  STACK_OF(X509)* certs = p7->d.sign->cert;
  out.reserve(static_cast<std::size_t>(std::max(0, sk_X509_num(certs))));  // -1 without a stack
  for (int i = 0; i < sk_X509_num(certs); ++i) out.push_back(ossl::up_ref(sk_X509_value(certs, i)));
  return out;
}

}  // namespace ca::crypto
