#include "crypto/key_quality.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "crypto/csr.hpp"
#include "crypto/pem.hpp"
#include "support/bad_csr.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using ca::testing::write_file;

constexpr const char* kCn = "bad.example";

// The public key of a request, read without parse_csr_pem (which refuses some of these before
// their key is ever looked at).
ossl::UniquePtr<EVP_PKEY> request_key(const std::string& pem) {
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509_REQ> req(bio ? PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  EVP_PKEY* key = req ? X509_REQ_get0_pubkey(req.get()) : nullptr;
  return key ? ossl::up_ref(key) : nullptr;
}

// `openssl req -verify` on the request: {verified, what openssl printed}.
std::pair<bool, std::string> openssl_verify(const TempDir& dir, const std::string& pem) {
  auto file = write_file(dir / "req.pem", pem);
  auto out = shell("openssl req -verify -noout -in " + file.string());
  return {out.exit_code == 0 && out.output.find("verify OK") != std::string::npos, out.output};
}

std::string sha256_hex(const unsigned char* data, std::size_t len) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(data, len, digest);
  return to_hex(digest);
}

std::string i2d_spki_sha256(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return {};
  std::string hex = sha256_hex(der, static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return hex;
}

// ---- CSRs with bad keys ---------------------------------------------------------------------------

struct BadCsrCase {
  const char* name;
  std::string (*make)(const std::string& cn, bool dns_san);
  // nullptr: parse_csr_pem accepts the request (and the authority's check_key_quality must refuse it).
  const char* parse_error;
  // What check_key_quality says about the key; nullptr: the key itself is fine.
  const char* quality_error;
  // `openssl req -verify`: true when OpenSSL calls the self-signature valid; otherwise a fragment
  // of what it says instead.
  bool openssl_verifies;
  const char* openssl_says;
};

const BadCsrCase kBadCsrs[] = {
    // OpenSSL loads ∞ and verifies the crafted signature (only `openssl req -text` balks: "Error
    // printing certificate request"): the key check alone catches it.
    {"ec_point_at_infinity", ca::testing::csr_ec_point_at_infinity, nullptr,
     "the EC public key is the point at infinity", true, nullptr},
    {"ec_explicit_parameters", ca::testing::csr_ec_explicit_parameters,
     "EC keys must use a named curve; explicit curve parameters are refused",
     "EC keys must use a named curve; explicit curve parameters are refused", true, nullptr},
    // The exponent is among the checks the parser makes before it verifies a signature.
    {"rsa_exponent_one", ca::testing::csr_rsa_exponent_one,
     "the RSA public exponent must be odd and at least 65537 (got 1)",
     "the RSA public exponent must be odd and at least 65537 (got 1)", true, nullptr},
    // OpenSSL's RSA code needs an odd modulus (Montgomery): it can neither sign nor verify, so the
    // parser refuses the signature before the key check would name the defect.
    {"rsa_even_modulus", ca::testing::csr_rsa_even_modulus,
     "CSR signature does not verify: the request was altered or signed with another key", "the RSA modulus is even",
     false, "verify failure"},
    {"rsa_small_factor", ca::testing::csr_rsa_small_factor, nullptr, "the RSA modulus has the small prime factor 3",
     true, nullptr},
    {"rsa_close_primes", ca::testing::csr_rsa_close_primes, nullptr,
     "the RSA modulus is the product of two close primes (Fermat factorisation succeeded)", true, nullptr},
    // The key is fine; the label is not. OpenSSL refuses too, without saying why precisely.
    {"ecdsa_signed_labelled_rsa", ca::testing::csr_ecdsa_signed_labelled_rsa,
     "CSR signature algorithm sha256WithRSAEncryption does not match its EC key; EC keys sign with ecdsa-with-SHA256",
     nullptr, false, "wrong public key type"},
    {"rsa_signed_labelled_ecdsa", ca::testing::csr_rsa_signed_labelled_ecdsa,
     "CSR signature algorithm ecdsa-with-SHA256 does not match its RSA key; RSA keys sign with sha256WithRSAEncryption",
     nullptr, false, "wrong public key type"},
};

class BadCsrs : public ::testing::Test {
 protected:
  TempDir dir_{"ca-keyq"};
};

TEST_F(BadCsrs, AreRefusedByTheParserOrTheKeyCheck) {
  for (const auto& c : kBadCsrs) {
    SCOPED_TRACE(c.name);
    std::string pem = c.make(kCn, true);
    ASSERT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n")) << pem;

    // What the authority does: parse, then judge the key.
    auto csr = parse_csr_pem(pem);
    if (c.parse_error) {
      ASSERT_FALSE(csr) << "parsed";
      EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
      EXPECT_TRUE(csr.error().message.starts_with(c.parse_error)) << csr.error().message;
    } else {
      ASSERT_TRUE(csr) << csr.error().message;
      EXPECT_EQ(csr->subject_text, std::string("CN=") + kCn);
      EXPECT_EQ(csr->dns_names, std::vector<std::string>{kCn});
      auto quality = check_key_quality(csr->public_key.get(), {});
      ASSERT_FALSE(quality) << "key accepted";
      EXPECT_EQ(quality.error().code, ErrorCode::policy_violation);
      EXPECT_EQ(quality.error().message, c.quality_error);
    }

    // The key on its own, whatever the parser thought of the request.
    auto key = request_key(pem);
    ASSERT_TRUE(key) << ossl::drain_errors();
    if (EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA) {
      EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 2048);
    }
    auto quality = check_key_quality(key.get(), {});
    if (c.quality_error) {
      ASSERT_FALSE(quality) << "key accepted";
      EXPECT_EQ(quality.error().code, ErrorCode::policy_violation);
      EXPECT_EQ(quality.error().message, c.quality_error);
    } else {
      EXPECT_TRUE(quality) << quality.error().message;
    }
  }
}

// The point of the exercise: OpenSSL itself calls most of these requests valid. (`openssl req
// -verify` exits 0 even when it prints "verify failure", so the text is what counts.)
TEST_F(BadCsrs, OpensslJudgesTheSelfSignature) {
  for (const auto& c : kBadCsrs) {
    SCOPED_TRACE(c.name);
    auto [verified, output] = openssl_verify(dir_, c.make(kCn, true));
    EXPECT_EQ(verified, c.openssl_verifies) << output;
    if (c.openssl_says) {
      EXPECT_NE(output.find(c.openssl_says), std::string::npos) << output;
    }
  }
}

TEST_F(BadCsrs, EvenModulusSignatureIsMathematicallyValid) {
  // OpenSSL cannot check it (above), so check s^e mod n == EM by hand: the request is what a
  // client with that key would send.
  std::string pem = ca::testing::csr_rsa_even_modulus(kCn, false);
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  ossl::UniquePtr<X509_REQ> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(req);
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  ASSERT_TRUE(key);
  BIGNUM *n_raw = nullptr, *e_raw = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n_raw), 1);
  ASSERT_EQ(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e_raw), 1);
  ossl::UniquePtr<BIGNUM> n(n_raw), e(e_raw);
  EXPECT_FALSE(BN_is_odd(n.get()));
  EXPECT_EQ(BN_num_bits(n.get()), 2048);

  const ASN1_BIT_STRING* signature = nullptr;
  X509_REQ_get0_signature(req.get(), &signature, nullptr);
  ossl::UniquePtr<BIGNUM> s(BN_bin2bn(ASN1_STRING_get0_data(signature), ASN1_STRING_length(signature), nullptr));
  ossl::UniquePtr<BIGNUM> m(BN_new());
  ossl::UniquePtr<BIGNUM> digest_tail(BN_new());
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), BN_CTX_free);
  ASSERT_EQ(BN_mod_exp(m.get(), s.get(), e.get(), n.get(), ctx.get()), 1);
  std::vector<unsigned char> em(256);
  ASSERT_EQ(BN_bn2binpad(m.get(), em.data(), 256), 256);

  unsigned char* tbs = nullptr;
  int tbs_len = i2d_re_X509_REQ_tbs(req.get(), &tbs);
  ASSERT_GT(tbs_len, 0);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(tbs, static_cast<std::size_t>(tbs_len), digest);
  OPENSSL_free(tbs);
  EXPECT_EQ(em[0], 0x00);
  EXPECT_EQ(em[1], 0x01);
  EXPECT_EQ(std::vector<unsigned char>(em.end() - 32, em.end()), std::vector<unsigned char>(digest, digest + 32));
}

TEST_F(BadCsrs, WithoutSubjectAltName) {
  std::string pem = ca::testing::csr_rsa_close_primes(kCn, false);
  auto csr = parse_csr_pem(pem);
  ASSERT_TRUE(csr) << csr.error().message;
  EXPECT_TRUE(csr->dns_names.empty());
}

// ---- Good keys ------------------------------------------------------------------------------------

struct GoodCase {
  const char* name;
  std::string (*make)();
  const char* algorithm;
};

const GoodCase kGoodCsrs[] = {
    {"ec_p256", [] { return ca::testing::csr_good_ec(kCn, "P-256"); }, "EC"},
    {"ec_p384", [] { return ca::testing::csr_good_ec(kCn, "P-384"); }, "EC"},
    {"ec_p521", [] { return ca::testing::csr_good_ec(kCn, "P-521"); }, "EC"},
    {"rsa2048", [] { return ca::testing::csr_good_rsa(kCn, 2048); }, "RSA"},
    {"rsa3072", [] { return ca::testing::csr_good_rsa(kCn, 3072); }, "RSA"},
    {"ed25519", [] { return ca::testing::csr_good_ed25519(kCn); }, "Ed25519"},
};

TEST(GoodKeys, PassTheParserAndTheKeyCheck) {
  TempDir dir("ca-keyq");
  for (const auto& c : kGoodCsrs) {
    SCOPED_TRACE(c.name);
    std::string pem = c.make();
    auto csr = parse_csr_pem(pem);
    ASSERT_TRUE(csr) << csr.error().message;
    EXPECT_EQ(csr->key.algorithm, c.algorithm);
    auto quality = check_key_quality(csr->public_key.get(), {});
    EXPECT_TRUE(quality) << quality.error().message;
    auto [verified, output] = openssl_verify(dir, pem);
    EXPECT_TRUE(verified) << output;
  }
}

TEST(GoodKeys, Ed448AndRsaPssKeysPass) {
  ossl::UniquePtr<EVP_PKEY> ed448(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
  ossl::UniquePtr<EVP_PKEY> pss;
  {
    ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA-PSS", nullptr));
    EVP_PKEY* key = nullptr;
    if (ctx && EVP_PKEY_keygen_init(ctx.get()) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) == 1 &&
        EVP_PKEY_generate(ctx.get(), &key) == 1)
      pss.reset(key);
  }
  ASSERT_TRUE(ed448 && pss) << ossl::drain_errors();
  for (EVP_PKEY* key : {ed448.get(), pss.get()}) {
    SCOPED_TRACE(EVP_PKEY_get0_type_name(key));
    auto quality = check_key_quality(key, {});
    EXPECT_TRUE(quality) << quality.error().message;
  }
}

TEST(KeyQuality, RefusesKeyTypesItDoesNotKnow) {
  ossl::UniquePtr<EVP_PKEY> x25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  ASSERT_TRUE(x25519);
  auto quality = check_key_quality(x25519.get(), {});
  ASSERT_FALSE(quality);
  EXPECT_EQ(quality.error().code, ErrorCode::policy_violation);
  EXPECT_EQ(quality.error().message, "the key type X25519 is not supported");
}

// ---- RSA exponents and moduli, key by key -----------------------------------------------------------

// An RSA public key with the modulus of `like` and exponent e (hex).
ossl::UniquePtr<EVP_PKEY> rsa_public(const BIGNUM* n, const char* e_hex) {
  BIGNUM* e = nullptr;
  BN_hex2bn(&e, e_hex);
  ossl::UniquePtr<BIGNUM> e_owner(e);
  OSSL_PARAM_BLD* build = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_N, n);
  OSSL_PARAM_BLD_push_BN(build, OSSL_PKEY_PARAM_RSA_E, e);
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(build);
  OSSL_PARAM_BLD_free(build);
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (ctx && params && EVP_PKEY_fromdata_init(ctx.get()) == 1)
    EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params);
  OSSL_PARAM_free(params);
  return ossl::UniquePtr<EVP_PKEY>(key);
}

TEST(KeyQuality, RsaExponents) {
  auto good = request_key(ca::testing::csr_good_rsa(kCn, 2048));
  ASSERT_TRUE(good);
  BIGNUM* n_raw = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(good.get(), OSSL_PKEY_PARAM_RSA_N, &n_raw), 1);
  ossl::UniquePtr<BIGNUM> n(n_raw);
  const struct {
    const char* e_hex;
    const char* error;  // nullptr: accepted
  } cases[] = {
      {"1", "the RSA public exponent must be odd and at least 65537 (got 1)"},
      {"3", "the RSA public exponent must be odd and at least 65537 (got 3)"},
      {"FFFF", "the RSA public exponent must be odd and at least 65537 (got 65535)"},
      {"10002", "the RSA public exponent must be odd and at least 65537 (got 65538)"},
      {"10001", nullptr},
      {"10003", nullptr},
      {"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", nullptr},  // 2^256 - 1
      {"10000000000000000000000000000000000000000000000000000000000000001",
       "the RSA public exponent must be less than 2^256 (got a 257-bit number)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.e_hex);
    auto key = rsa_public(n.get(), c.e_hex);
    ASSERT_TRUE(key) << ossl::drain_errors();
    auto quality = check_key_quality(key.get(), {});
    if (c.error) {
      ASSERT_FALSE(quality);
      EXPECT_EQ(quality.error().code, ErrorCode::policy_violation);
      EXPECT_EQ(quality.error().message, c.error);
    } else {
      EXPECT_TRUE(quality) << quality.error().message;
    }
  }
}

TEST(KeyQuality, RsaSmallFactorsUpTo997) {
  auto good = request_key(ca::testing::csr_good_rsa(kCn, 2048));
  ASSERT_TRUE(good);
  BIGNUM* n_raw = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(good.get(), OSSL_PKEY_PARAM_RSA_N, &n_raw), 1);
  ossl::UniquePtr<BIGNUM> n(n_raw);
  for (BN_ULONG prime : {3UL, 5UL, 991UL, 997UL}) {
    SCOPED_TRACE(prime);
    ossl::UniquePtr<BIGNUM> times(BN_dup(n.get()));
    ASSERT_EQ(BN_mul_word(times.get(), prime), 1);
    auto key = rsa_public(times.get(), "10001");
    ASSERT_TRUE(key);
    auto quality = check_key_quality(key.get(), {});
    ASSERT_FALSE(quality);
    EXPECT_EQ(quality.error().message, "the RSA modulus has the small prime factor " + std::to_string(prime));
  }
  // 1009 is the first prime the check leaves alone.
  ossl::UniquePtr<BIGNUM> times(BN_dup(n.get()));
  ASSERT_EQ(BN_mul_word(times.get(), 1009), 1);
  auto key = rsa_public(times.get(), "10001");
  ASSERT_TRUE(key);
  EXPECT_TRUE(check_key_quality(key.get(), {}));
}

TEST(KeyQuality, RsaPerfectSquareModulusIsFactorable) {
  // n = p² is the closest two primes can be: b² = a² − n = 0 in the first round.
  BIGNUM* p = nullptr;
  BN_hex2bn(&p,
            "FDB9FAB743F24AD1BD0F0538A8323D9323E061A8A34D12D612E43017DAF3D65033E0FDE3F8A8CD965AEA8D83A0044A8FDB5C8FFD0"
            "15E7268C4CF6DF99046EEBAEF880C25BC7A936776346ED78923BC85AF75EC2556A1CA71C08834170D888FAD98B5CE2089D650467F1"
            "55C5B7A7B75810AD7CB0F70AD04D24F7CAD7063E090EF");
  ossl::UniquePtr<BIGNUM> p_owner(p), n(BN_new());
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), BN_CTX_free);
  ASSERT_EQ(BN_sqr(n.get(), p, ctx.get()), 1);
  auto key = rsa_public(n.get(), "10001");
  ASSERT_TRUE(key);
  auto quality = check_key_quality(key.get(), {});
  ASSERT_FALSE(quality);
  EXPECT_EQ(quality.error().message,
            "the RSA modulus is the product of two close primes (Fermat factorisation succeeded)");
}

TEST(KeyQuality, RsaFermatLooksExactly100RoundsFar) {
  // n = x·y with x, y odd and free of factors below 1000 (primality does not matter to Fermat).
  // From a0 = ceil(sqrt(n)) the method reaches (x + y)/2 after about (y − x)²/(8·sqrt(n)) rounds;
  // the round counts below were computed exactly (Python's math.isqrt) for this x and these gaps.
  BIGNUM* x_raw = nullptr;
  BN_hex2bn(&x_raw,
            "FDB9FAB743F24AD1BD0F0538A8323D9323E061A8A34D12D612E43017DAF3D65033E0FDE3F8A8CD965AEA8D83A0044A8FDB5C8FFD0"
            "15E7268C4CF6DF99046EEBAEF880C25BC7A936776346ED78923BC85AF75EC2556A1CA71C08834170D888FAD98B5CE2089D650467F1"
            "55C5B7A7B75810AD7CB0F70AD04D24F7CAD7063E090EF");
  ossl::UniquePtr<BIGNUM> x(x_raw);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), BN_CTX_free);
  auto has_small_factor = [](const BIGNUM* v) {
    for (BN_ULONG d = 3; d < 1000; d += 2)
      if (BN_mod_word(v, d) == 0) return true;
    return false;
  };
  const struct {
    BN_ULONG gap;  // y − x ≈ gap·2^507 (then the next odd y without small factors)
    int round;     // the round (from 0) whose a² − n is a square
    bool refused;
  } cases[] = {{480, 28, true}, {901, 99, true}, {902, 100, false}, {1600, 315, false}};
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << "round " << c.round);
    ossl::UniquePtr<BIGNUM> y(BN_new()), n(BN_new());
    ASSERT_TRUE(BN_set_word(y.get(), c.gap) && BN_lshift(y.get(), y.get(), 507) && BN_add(y.get(), y.get(), x.get()));
    if (!BN_is_odd(y.get())) {
      ASSERT_TRUE(BN_add_word(y.get(), 1));
    }
    while (has_small_factor(y.get())) {
      ASSERT_TRUE(BN_add_word(y.get(), 2));
    }
    ASSERT_TRUE(BN_mul(n.get(), x.get(), y.get(), ctx.get()));
    auto key = rsa_public(n.get(), "10001");
    ASSERT_TRUE(key);
    auto quality = check_key_quality(key.get(), {});
    EXPECT_EQ(!quality, c.refused);
    if (!quality) {
      EXPECT_EQ(quality.error().message,
                "the RSA modulus is the product of two close primes (Fermat factorisation succeeded)");
    }
  }
}

// ---- The SubjectPublicKeyInfo hash and the block list --------------------------------------------------

TEST(SpkiSha256, IsTheHashOfTheDerSubjectPublicKeyInfo) {
  const char* types[] = {"P-256", "P-384", "P-521"};
  for (const char* curve : types) {
    SCOPED_TRACE(curve);
    ossl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    ASSERT_TRUE(key);
    EXPECT_EQ(spki_sha256_hex(key.get()), i2d_spki_sha256(key.get()));
  }
  ossl::UniquePtr<EVP_PKEY> ed25519(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  ossl::UniquePtr<EVP_PKEY> ed448(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
  auto rsa = request_key(ca::testing::csr_good_rsa(kCn, 2048));
  for (EVP_PKEY* key : {ed25519.get(), ed448.get(), rsa.get()}) {
    ASSERT_TRUE(key);
    SCOPED_TRACE(EVP_PKEY_get0_type_name(key));
    std::string hex = spki_sha256_hex(key);
    EXPECT_EQ(hex.size(), 64u);
    EXPECT_EQ(hex, i2d_spki_sha256(key));
  }
}

TEST(SpkiSha256, EcPointsAreHashedUncompressed) {
  // A compressed point names the same key: its hash is that of the uncompressed form (as Go's
  // x509.MarshalPKIXPublicKey writes it), so a block list entry cannot be dodged by compressing.
  ossl::UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_TRUE(key);
  ossl::UniquePtr<EVP_PKEY> compressed(EVP_PKEY_dup(key.get()));
  ASSERT_TRUE(compressed);
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(compressed.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED),
            1);
  ASSERT_NE(i2d_spki_sha256(compressed.get()), i2d_spki_sha256(key.get())) << "not compressed";
  EXPECT_EQ(spki_sha256_hex(compressed.get()), spki_sha256_hex(key.get()));
}

TEST(SpkiBlocklist, LoadsHashesCommentsAndBlankLines) {
  TempDir dir("ca-keyq");
  const std::string a(64, 'a'), b = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789ABCDEF";
  auto file = write_file(dir / "blocked.txt", "# Debian weak keys, 2008\n\n" + a + "\n  " + b +
                                                  "  # uppercase is fine\r\n\t\n# end\n");
  auto list = load_spki_blocklist(file);
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_EQ(*list, (std::set<std::string>{a, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}));

  auto empty = load_spki_blocklist(write_file(dir / "empty.txt", ""));
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->empty());
}

TEST(SpkiBlocklist, BadLinesNameFileAndLine) {
  TempDir dir("ca-keyq");
  const std::string good(64, 'f');
  const struct {
    const char* name;
    std::string line;
  } cases[] = {
      {"short", std::string(63, 'a')},
      {"long", std::string(65, 'a')},
      {"not hex", std::string(63, 'a') + "g"},
      {"colons", "aa:bb:cc"},
      {"two hashes", good + " " + good},
      {"glued comment", good + "#x"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto file = write_file(dir / "blocked.txt", "# header\n" + good + "\n" + c.line + "\n");
    auto list = load_spki_blocklist(file);
    ASSERT_FALSE(list);
    EXPECT_EQ(list.error().code, ErrorCode::config);
    EXPECT_TRUE(list.error().message.starts_with("key block list " + file.string() + " line 3: "))
        << list.error().message;
  }
  auto missing = load_spki_blocklist(dir / "missing.txt");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::io);
  EXPECT_NE(missing.error().message.find("missing.txt"), std::string::npos) << missing.error().message;
}

TEST(SpkiBlocklist, BlockedKeysAreRefusedWhateverTheirType) {
  auto ec = request_key(ca::testing::csr_good_ec(kCn));
  auto rsa = request_key(ca::testing::csr_good_rsa(kCn, 2048));
  auto ed = request_key(ca::testing::csr_good_ed25519(kCn));
  auto other = request_key(ca::testing::csr_good_ec(kCn));
  ASSERT_TRUE(ec && rsa && ed && other);
  KeyQualityPolicy policy;
  for (EVP_PKEY* key : {ec.get(), rsa.get(), ed.get()}) policy.blocked_spki_sha256.insert(spki_sha256_hex(key));
  for (EVP_PKEY* key : {ec.get(), rsa.get(), ed.get()}) {
    SCOPED_TRACE(EVP_PKEY_get0_type_name(key));
    auto quality = check_key_quality(key, policy);
    ASSERT_FALSE(quality);
    EXPECT_EQ(quality.error().code, ErrorCode::policy_violation);
    EXPECT_EQ(quality.error().message, "this public key is on the block list (SubjectPublicKeyInfo SHA-256 " +
                                           spki_sha256_hex(key) + ")");
  }
  EXPECT_TRUE(check_key_quality(other.get(), policy));

  // The same list through a file, as an operator writes it.
  TempDir dir("ca-keyq");
  auto list = load_spki_blocklist(write_file(dir / "blocked.txt", spki_sha256_hex(ec.get()) + "\n"));
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_FALSE(check_key_quality(ec.get(), KeyQualityPolicy{*list}));
  EXPECT_TRUE(check_key_quality(rsa.get(), KeyQualityPolicy{*list}));
}

// Not a benchmark with a threshold: a figure to read in the log when the checks change.
TEST(KeyQualityCost, PrintsMicrosecondsPerKey) {
  auto rsa = request_key(ca::testing::csr_good_rsa(kCn, 2048));
  auto ec = request_key(ca::testing::csr_good_ec(kCn));
  ASSERT_TRUE(rsa && ec);
  KeyQualityPolicy policy;
  policy.blocked_spki_sha256.insert(std::string(64, '0'));  // so the hash is computed too
  for (auto [name, key] : {std::pair{"RSA-2048", rsa.get()}, std::pair{"P-256", ec.get()}}) {
    constexpr int kRounds = 200;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) ASSERT_TRUE(check_key_quality(key, policy));
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    std::printf("check_key_quality %s: %.1f us per key\n", name, took.count() / kRounds);
  }
}

}  // namespace
}  // namespace ca::crypto
