#include "crypto/keys.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "crypto/pem.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

struct KeyCase {
  KeyType type;
  const char* algorithm;
  int bits;
  const char* curve;
  int digest_nid;  // NID_undef: the algorithm hashes internally
};

void PrintTo(const KeyCase& c, std::ostream* os) { *os << key_type_name(c.type); }

class GeneratedKey : public ::testing::TestWithParam<KeyCase> {};

TEST_P(GeneratedKey, DescribesItselfAndRoundTripsThroughPem) {
  const KeyCase& c = GetParam();
  auto key = generate_key(c.type);
  ASSERT_TRUE(key) << key.error().message;
  ASSERT_TRUE(*key);

  PublicKeyInfo info = describe_public_key(key->get());
  EXPECT_EQ(info.algorithm, c.algorithm);
  EXPECT_EQ(info.bits, c.bits);
  EXPECT_EQ(info.curve, c.curve);
  const EVP_MD* md = signing_digest_for(key->get());
  EXPECT_EQ(md ? EVP_MD_get_type(md) : NID_undef, c.digest_nid);

  std::string pem = private_key_to_pem(key->get());
  EXPECT_TRUE(pem.starts_with("-----BEGIN PRIVATE KEY-----\n")) << "not PKCS#8";
  auto parsed = parse_private_key_pem(pem);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(EVP_PKEY_eq(parsed->get(), key->get()), 1);
  EXPECT_EQ(private_key_to_pem(parsed->get()), pem);
}

INSTANTIATE_TEST_SUITE_P(
    AllKeyTypes, GeneratedKey,
    ::testing::Values(KeyCase{KeyType::ec_p256, "EC", 256, "P-256", NID_sha256},
                      KeyCase{KeyType::ec_p384, "EC", 384, "P-384", NID_sha384},
                      KeyCase{KeyType::rsa_2048, "RSA", 2048, "", NID_sha256},
                      KeyCase{KeyType::rsa_3072, "RSA", 3072, "", NID_sha256},
                      KeyCase{KeyType::ed25519, "Ed25519", 256, "", NID_undef}),
    [](const ::testing::TestParamInfo<KeyCase>& info) { return fixtures::test_name(info.param.type); });

// Keys we never generate but may meet in CSRs.
TEST(DescribePublicKey, KeysFromElsewhere) {
  const struct {
    const char* name;
    ossl::UniquePtr<EVP_PKEY> key;
    const char* algorithm;
    const char* curve;
    int digest_nid;
  } cases[] = {
      {"P-521", ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521")), "EC", "P-521",
       NID_sha512},
      {"secp256k1", ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1")), "EC",
       "secp256k1", NID_sha256},
      {"Ed448", ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448")), "Ed448", "", NID_undef},
      {"X25519", ossl::UniquePtr<EVP_PKEY>(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519")), "X25519", "", NID_sha256},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.key);
    PublicKeyInfo info = describe_public_key(c.key.get());
    EXPECT_EQ(info.algorithm, c.algorithm);
    EXPECT_EQ(info.curve, c.curve);
    const EVP_MD* md = signing_digest_for(c.key.get());
    EXPECT_EQ(md ? EVP_MD_get_type(md) : NID_undef, c.digest_nid);
  }
}

}  // namespace
}  // namespace ca::crypto
