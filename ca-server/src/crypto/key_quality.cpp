// Key-quality checks after Let's Encrypt's goodkey (boulder/goodkey/good_key.go), in OpenSSL.
//
// Cost (Release, the 2-core build machine, block list on): ~20 µs for P-256 (reading the
// uncompressed point, EVP_PKEY_public_check_quick), ~30-40 µs for RSA-2048 (one provider call for
// n and e ~10 µs, 24 BN_mod_word calls for the primes below 1000 ~11 µs, one Newton square root of
// the modulus, then 100 Fermat rounds that cost a few word operations each and almost never need a
// second root thanks to the quadratic-residue filters). The SubjectPublicKeyInfo is written here
// rather than by i2d_PUBKEY, which costs ~100 µs per call in OpenSSL 3.0 (a fresh OSSL_ENCODER per
// provider key).
#include "crypto/key_quality.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "core/openssl_owners.hpp"
#include "crypto/der_writer.hpp"
#include "crypto/extra_owners.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

using BnCtx = detail::Owned<BN_CTX, BN_CTX_free>;

std::unexpected<Error> refuse(std::string message) { return fail(Error::policy(std::move(message))); }

// ---- EC ----------------------------------------------------------------------------------------

Status check_ec(const EVP_PKEY* key) {
  if (has_explicit_curve_parameters(key))
    return refuse("EC keys must use a named curve; explicit curve parameters are refused");
  // "Quick": the point is not at infinity, its coordinates are field elements and it is on the
  // curve. The full check (n·Q = ∞) adds nothing on the prime-order curves a named group gives.
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(key), nullptr));
  if (!ctx) return fail(Error::crypto("cannot check the EC public key: " + ossl::drain_errors()));
  if (EVP_PKEY_public_check_quick(ctx.get()) != 1) {
    unsigned long last = ERR_peek_last_error();
    bool infinity = ERR_GET_LIB(last) == ERR_LIB_EC && ERR_GET_REASON(last) == EC_R_POINT_AT_INFINITY;
    std::string detail = ossl::drain_errors();
    if (infinity) return refuse("the EC public key is the point at infinity");
    return refuse("the EC public key is not a valid point on its curve: " + detail);
  }
  return ok();
}

// ---- RSA ---------------------------------------------------------------------------------------

// Every prime below 1000 but 2 (an even modulus has its own message).
constexpr auto kOddPrimesBelow1000 = [] {
  std::array<bool, 1000> composite{};
  std::array<uint16_t, 167> primes{};
  std::size_t count = 0;
  for (unsigned i = 2; i < 1000; ++i) {
    if (composite[i]) continue;
    if (i != 2) primes[count++] = static_cast<uint16_t>(i);
    for (unsigned j = i * i; j < 1000; j += i) composite[j] = true;
  }
  return primes;
}();
static_assert(kOddPrimesBelow1000.back() == 997);

// Quadratic residues modulo m: a number that is not one modulo some m is not a square. The four
// moduli let through about 1 non-square in 120, so a Fermat round seldom needs a square root.
template <unsigned M>
constexpr std::array<bool, M> squares_mod() {
  std::array<bool, M> t{};
  for (unsigned x = 0; x < M; ++x) t[(x * x) % M] = true;
  return t;
}
constexpr auto kSquares64 = squares_mod<64>();
constexpr auto kSquares63 = squares_mod<63>();
constexpr auto kSquares65 = squares_mod<65>();
constexpr auto kSquares11 = squares_mod<11>();
constexpr BN_ULONG kFilterModulus = 64UL * 63 * 65 * 11;  // 2882880: one residue serves the four filters

bool may_be_square(BN_ULONG residue) {
  return kSquares64[residue % 64] && kSquares63[residue % 63] && kSquares65[residue % 65] && kSquares11[residue % 11];
}

// floor(sqrt(n)) by Newton's iteration (OpenSSL has no BN_sqrt). It starts above the root, from
// the square root of n's top 62 bits in double precision (about 30 correct bits), and decreases
// monotonically to it: 6 or 7 divisions for a 2048-bit n instead of 11 from a power of two.
bool integer_sqrt(BIGNUM* root, const BIGNUM* n, BN_CTX* ctx) {
  if (BN_is_zero(n)) {
    BN_zero(root);
    return true;
  }
  BN_CTX_start(ctx);
  BIGNUM* x = BN_CTX_get(ctx);
  BIGNUM* y = BN_CTX_get(ctx);
  const int bits = BN_num_bits(n);
  const int shift = bits > 62 ? (bits - 62 + 1) & ~1 : 0;  // even, so the root shifts by half
  bool good = y != nullptr && BN_rshift(x, n, shift) == 1;
  if (good) {
    // +2 covers the double's rounding and the bits below the shift: the start is >= sqrt(n).
    auto top = static_cast<double>(BN_get_word(x));
    good = BN_set_word(x, static_cast<BN_ULONG>(std::sqrt(top)) + 2) == 1 && BN_lshift(x, x, shift / 2) == 1;
  }
  while (good) {
    good = BN_div(y, nullptr, n, x, ctx) == 1 && BN_add(y, y, x) == 1 && BN_rshift1(y, y) == 1;
    if (!good || BN_cmp(y, x) >= 0) break;
    BN_swap(x, y);
  }
  good = good && BN_copy(root, x) != nullptr;
  BN_CTX_end(ctx);
  return good;
}

// Fermat's method as goodkey runs it: n = a² − b² = (a + b)(a − b). From a = ceil(sqrt(n)), a
// square b² = a² − n within 100 steps means |p − q| is small enough to factor n at once. The
// residue of b² modulo kFilterModulus is carried from step to step as a machine word
// ((a + 1)² − n = b² + 2a + 1), so a step costs a few integer operations; the rare b² that passes
// the filters is computed and its root taken.
Result<bool> factors_by_fermat(const BIGNUM* n, BN_CTX* ctx, int rounds = 100) {
  BN_CTX_start(ctx);
  BIGNUM* a = BN_CTX_get(ctx);
  BIGNUM* b2 = BN_CTX_get(ctx);
  BIGNUM* root = BN_CTX_get(ctx);
  bool good = root != nullptr && integer_sqrt(a, n, ctx) && BN_sqr(b2, a, ctx) == 1;
  if (good && BN_cmp(b2, n) < 0) good = BN_add_word(a, 1) == 1;
  BN_ULONG ra = good ? BN_mod_word(a, kFilterModulus) : 0;
  BN_ULONG rb = 0;
  if (good) {
    good = BN_sqr(b2, a, ctx) == 1 && BN_sub(b2, b2, n) == 1;
    rb = good ? BN_mod_word(b2, kFilterModulus) : 0;
  }
  good = good && ra != static_cast<BN_ULONG>(-1) && rb != static_cast<BN_ULONG>(-1);
  bool found = false;
  for (int step = 0; good && !found && step < rounds; ++step) {
    if (may_be_square(rb)) {
      // b² = (a0 + step)² − n; a already holds a0 + step.
      good = BN_sqr(b2, a, ctx) == 1 && BN_sub(b2, b2, n) == 1 && integer_sqrt(root, b2, ctx) &&
             BN_sqr(root, root, ctx) == 1;
      found = good && BN_cmp(root, b2) == 0;
    }
    rb = (rb + 2 * ra + 1) % kFilterModulus;
    ra = (ra + 1) % kFilterModulus;
    good = good && BN_add_word(a, 1) == 1;
  }
  BN_CTX_end(ctx);
  if (!good) return fail(Error::crypto("cannot run the Fermat check on the RSA modulus: " + ossl::drain_errors()));
  return found;
}

std::string describe_exponent(const BIGNUM* e) {
  if (BN_num_bits(e) > 64) return fmt::format("a {}-bit number", BN_num_bits(e));
  detail::OpensslChars text(BN_bn2dec(e));
  return text ? std::string(text.get()) : std::string("?");
}

struct RsaPublicKey {
  ossl::UniquePtr<BIGNUM> n, e;
};

// n and e in one provider call (each EVP_PKEY_get_bn_param costs ~10 µs in OpenSSL 3.0).
Result<RsaPublicKey> read_rsa(const EVP_PKEY* key) {
  std::array<unsigned char, 2048> n_buf;  // up to 16384-bit moduli; larger ones take the second try
  std::array<unsigned char, 64> e_buf;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, n_buf.data(), n_buf.size()),
                         OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, e_buf.data(), e_buf.size()),
                         OSSL_PARAM_construct_end()};
  BIGNUM *n = nullptr, *e = nullptr;
  if (EVP_PKEY_get_params(const_cast<EVP_PKEY*>(key), params) == 1 && OSSL_PARAM_modified(&params[0]) &&
      OSSL_PARAM_modified(&params[1]) && OSSL_PARAM_get_BN(&params[0], &n) == 1 &&
      OSSL_PARAM_get_BN(&params[1], &e) == 1)
    return RsaPublicKey{ossl::UniquePtr<BIGNUM>(n), ossl::UniquePtr<BIGNUM>(e)};
  BN_free(n);
  BN_free(e);
  n = e = nullptr;
  ossl::drain_errors();
  bool read = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
              EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1;
  RsaPublicKey out{ossl::UniquePtr<BIGNUM>(n), ossl::UniquePtr<BIGNUM>(e)};
  if (!read) return fail(Error::crypto("cannot read the RSA public key: " + ossl::drain_errors()));
  return out;
}

// Bounds that cost nothing to check and bound what verifying a signature with the key costs.
Status check_rsa_bounds(const RsaPublicKey& key) {
  const BIGNUM* n = key.n.get();
  const BIGNUM* e = key.e.get();
  if (BN_num_bits(n) > kMaxRsaModulusBits)
    return refuse(
        fmt::format("the RSA modulus has {} bits; at most {} are accepted", BN_num_bits(n), kMaxRsaModulusBits));
  if (BN_num_bits(e) > 256)
    return refuse(fmt::format("the RSA public exponent must be less than 2^256 (got {})", describe_exponent(e)));
  if (!BN_is_odd(e) || BN_get_word(e) < 65537)
    return refuse(fmt::format("the RSA public exponent must be odd and at least 65537 (got {})", describe_exponent(e)));
  return ok();
}

Status check_rsa(const RsaPublicKey& key) {
  const BIGNUM* n = key.n.get();
  CA_CHECK(check_rsa_bounds(key));

  if (!BN_is_odd(n)) return refuse("the RSA modulus is even");
  // Primes grouped into products that fit a word: one BN_mod_word per group instead of one per
  // prime (24 calls, ~11 µs for 2048 bits; products below 2^32 would take 50 calls and twice the time).
  for (std::size_t first = 0; first < kOddPrimesBelow1000.size();) {
    BN_ULONG product = 1;
    std::size_t last = first;
    while (last < kOddPrimesBelow1000.size() &&
           product <= std::numeric_limits<BN_ULONG>::max() / kOddPrimesBelow1000[last])
      product *= kOddPrimesBelow1000[last++];
    BN_ULONG r = BN_mod_word(n, product);
    if (r == static_cast<BN_ULONG>(-1))
      return fail(Error::crypto("cannot divide the RSA modulus: " + ossl::drain_errors()));
    for (std::size_t i = first; i < last; ++i)
      if (r % kOddPrimesBelow1000[i] == 0)
        return refuse(fmt::format("the RSA modulus has the small prime factor {}", kOddPrimesBelow1000[i]));
    first = last;
  }

  BnCtx ctx(BN_CTX_new());
  if (!ctx) return fail(Error::crypto("cannot allocate a BN_CTX: " + ossl::drain_errors()));
  CA_TRY(bool close, factors_by_fermat(n, ctx.get()));
  if (close) return refuse("the RSA modulus is the product of two close primes (Fermat factorisation succeeded)");
  return ok();
}

// ---- SubjectPublicKeyInfo ----------------------------------------------------------------------

std::vector<uint8_t> bn_bytes(const BIGNUM* v) {
  std::vector<uint8_t> out(static_cast<std::size_t>(BN_num_bytes(v)));
  BN_bn2bin(v, out.data());
  return out;
}

std::optional<std::vector<uint8_t>> i2d_spki(const EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  detail::OpensslBytes owner(der);
  if (len <= 0) return std::nullopt;
  return std::vector<uint8_t>(der, der + len);
}

std::optional<std::vector<uint8_t>> ec_spki(const EVP_PKEY* key) {
  char group[80];
  size_t len = 0;
  if (has_explicit_curve_parameters(key) || EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1)
    return i2d_spki(key);
  const ASN1_OBJECT* curve = OBJ_nid2obj(OBJ_txt2nid(group));
  std::array<uint8_t, 1 + 2 * 66> point{};  // uncompressed point of the largest prime curve (P-521)
  size_t point_len = 0;
  if (!curve || OBJ_obj2nid(curve) == NID_undef ||
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(), point.size(),
                                      &point_len) != 1)
    return i2d_spki(key);
  std::array<uint8_t, 32> curve_der{};
  int curve_len = i2d_ASN1_OBJECT(curve, nullptr);
  unsigned char* p = curve_der.data();
  if (curve_len <= 0 || static_cast<std::size_t>(curve_len) > curve_der.size() ||
      i2d_ASN1_OBJECT(curve, &p) != curve_len)
    return i2d_spki(key);
  DerWriter w;
  auto spki = w.begin(0x30);
  auto algorithm = w.begin(0x30);
  w.oid("1.2.840.10045.2.1");  // id-ecPublicKey
  w.raw(std::span<const uint8_t>(curve_der.data(), static_cast<std::size_t>(curve_len)));
  w.end(algorithm);
  w.bit_string(std::span<const uint8_t>(point.data(), point_len));
  w.end(spki);
  return std::move(w.bytes());
}

std::vector<uint8_t> rsa_spki(const RsaPublicKey& key) {
  DerWriter w;
  auto spki = w.begin(0x30);
  auto algorithm = w.begin(0x30);
  w.oid("1.2.840.113549.1.1.1");  // rsaEncryption
  w.null();
  w.end(algorithm);
  auto bits = w.begin(0x03);
  static constexpr uint8_t kNoUnusedBits[] = {0};
  w.raw(kNoUnusedBits);
  auto rsa_key = w.begin(0x30);
  w.unsigned_integer(bn_bytes(key.n.get()));
  w.unsigned_integer(bn_bytes(key.e.get()));
  w.end(rsa_key);
  w.end(bits);
  w.end(spki);
  return std::move(w.bytes());
}

std::optional<std::vector<uint8_t>> eddsa_spki(const EVP_PKEY* key, std::string_view oid) {
  std::array<uint8_t, 57> raw{};  // Ed448's length; Ed25519's is 32
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1) return std::nullopt;
  DerWriter w;
  auto spki = w.begin(0x30);
  auto algorithm = w.begin(0x30);
  w.oid(oid);
  w.end(algorithm);
  w.bit_string(std::span<const uint8_t>(raw.data(), len));
  w.end(spki);
  return std::move(w.bytes());
}

std::optional<std::vector<uint8_t>> canonical_spki(const EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC:
      return ec_spki(key);
    case EVP_PKEY_RSA: {
      auto rsa = read_rsa(key);
      if (!rsa) return std::nullopt;
      return rsa_spki(*rsa);
    }
    case EVP_PKEY_ED25519:
      return eddsa_spki(key, "1.3.101.112");
    case EVP_PKEY_ED448:
      return eddsa_spki(key, "1.3.101.113");
    default:
      return i2d_spki(key);  // RSA-PSS keeps its parameters
  }
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(bytes.data(), bytes.size(), digest.data());
  return to_hex(digest);
}

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

bool has_explicit_curve_parameters(const EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char text[80];
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, text, sizeof text, &len) != 1)
    ossl::drain_errors();  // no encoding reported: judge by the name alone
  else if (std::string_view(text, len) == OSSL_PKEY_EC_ENCODING_EXPLICIT)
    return true;
  if (EVP_PKEY_get_group_name(key, text, sizeof text, &len) != 1) {
    ossl::drain_errors();
    return true;  // no name: the parameters can only be explicit
  }
  return false;
}

std::string spki_sha256_hex(const EVP_PKEY* key) {
  auto spki = canonical_spki(key);
  if (!spki) {
    ossl::drain_errors();
    return {};
  }
  return sha256_hex(*spki);
}

Status check_key_bounds(const EVP_PKEY* key) {
  if (!key) return fail(Error::internal("check_key_bounds without a key"));
  const int type = EVP_PKEY_get_base_id(key);
  if (type != EVP_PKEY_RSA && type != EVP_PKEY_RSA_PSS) return ok();
  CA_TRY(auto rsa, read_rsa(key));
  return check_rsa_bounds(rsa);
}

Status check_key_quality(const EVP_PKEY* key, const KeyQualityPolicy& policy) {
  if (!key) return fail(Error::internal("check_key_quality without a key"));
  const int type = EVP_PKEY_get_base_id(key);
  std::optional<RsaPublicKey> rsa;
  switch (type) {
    case EVP_PKEY_EC:
      CA_CHECK(check_ec(key));
      break;
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS: {
      CA_TRY(rsa, read_rsa(key));
      CA_CHECK(check_rsa(*rsa));
      break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
      break;
    default: {
      const char* name = EVP_PKEY_get0_type_name(key);
      return refuse(fmt::format("the key type {} is not supported", name ? name : "(unknown)"));
    }
  }
  if (!policy.blocked_spki_sha256.empty()) {
    // RSA's n and e are at hand: no second read from the provider.
    std::string hash = type == EVP_PKEY_RSA ? sha256_hex(rsa_spki(*rsa)) : spki_sha256_hex(key);
    if (hash.empty()) return refuse("the public key cannot be encoded as a SubjectPublicKeyInfo");
    if (policy.blocked_spki_sha256.contains(hash))
      return refuse(fmt::format("this public key is on the block list (SubjectPublicKeyInfo SHA-256 {})", hash));
  }
  return ok();
}

Result<std::set<std::string>> load_spki_blocklist(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    return fail(Error::io(fmt::format("cannot read the key block list {}: {}", file.string(), std::strerror(errno))));
  std::set<std::string> hashes;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string_view text = trim(line);
    // A comment fills the line or follows the hash after whitespace.
    if (auto hash_mark = text.find('#'); hash_mark != std::string_view::npos &&
                                         (hash_mark == 0 || text[hash_mark - 1] == ' ' || text[hash_mark - 1] == '\t'))
      text = trim(text.substr(0, hash_mark));
    if (text.empty()) continue;
    bool is_hash = text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
                     return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                   });
    if (!is_hash) {
      std::string shown(text.substr(0, 80));
      for (char& c : shown)
        if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
      return fail(
          Error::config(fmt::format("key block list {} line {}: expected the 64 hex digits of a SHA-256, found '{}'",
                                    file.string(), number, shown)));
    }
    std::string hash(text);
    for (char& c : hash) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    hashes.insert(std::move(hash));
  }
  if (in.bad()) return fail(Error::io(fmt::format("cannot read the key block list {}", file.string())));
  return hashes;
}

}  // namespace ca::crypto
