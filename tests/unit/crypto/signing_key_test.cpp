// crypto/signing_key: keys named by URI (file:, a plain path; pkcs11: and the rest refused), and
// signatures the openssl command line verifies.
#include "crypto/signing_key.hpp"

#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/objects.h>

#include "core/files.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;

void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class SigningKeyUriTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = generate_key(KeyType::ec_p256);
    ASSERT_TRUE(key) << key.error().message;
    key_ = std::move(*key);
    std::filesystem::create_directories(path_.parent_path());
    ASSERT_TRUE(write_private_key_file(path_, key_.get()));
  }
  TempDir dir_{"ca-key-uri"};
  // A space in the folder: the file: URI escapes it.
  std::filesystem::path path_ = dir_.path() / "my keys" / "ca_signing.key";
  ossl::UniquePtr<EVP_PKEY> key_;
};

TEST_F(SigningKeyUriTest, OpensTheKeyAFileUriNamesInEachForm) {
  const std::string escaped = file_uri(path_).substr(std::string_view("file:").size());
  for (const std::string& uri : {file_uri(path_), "file://" + escaped, "file://localhost" + escaped}) {
    SCOPED_TRACE(uri);
    auto opened = open_signing_key(uri);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(EVP_PKEY_eq(opened->handle(), key_.get()), 1);
    EXPECT_EQ(opened->uri(), uri);
    EXPECT_EQ(opened->public_key_info().algorithm, "EC");
    EXPECT_EQ(opened->public_key_info().curve, "P-256");
  }
}

TEST_F(SigningKeyUriTest, OpensAPlainPathAsConfigurationsBeforeUrisNamedKeys) {
  auto opened = open_signing_key(path_.string());
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(EVP_PKEY_eq(opened->handle(), key_.get()), 1);
}

TEST_F(SigningKeyUriTest, AMissingFileIsAnIoErrorNamingIt) {
  const auto missing = dir_.path() / "missing.key";
  auto opened = open_signing_key(file_uri(missing));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::io);
  EXPECT_NE(opened.error().message.find(missing.string()), std::string::npos) << opened.error().message;
}

TEST_F(SigningKeyUriTest, Pkcs11IsRefusedWithoutRepeatingTheUriAndItsPin) {
  auto opened = open_signing_key("pkcs11:token=ca;object=ca-signing;type=private?pin-value=123456");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::config);
  EXPECT_NE(opened.error().message.find("no PKCS#11 key store in this build"), std::string::npos)
      << opened.error().message;
  EXPECT_EQ(opened.error().message.find("123456"), std::string::npos) << opened.error().message;
}

TEST_F(SigningKeyUriTest, UnknownSchemesAndOtherHostsAreRefused) {
  for (const char* uri : {"vault:secret/ca-signing", "https://keys.example/ca.pem", "file://keyhost/ca.key", ""}) {
    SCOPED_TRACE(uri);
    auto opened = open_signing_key(uri);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error().code, ErrorCode::config) << opened.error().message;
  }
  auto vault = open_signing_key("vault:secret/ca-signing");
  EXPECT_NE(vault.error().message.find("unknown key store 'vault:'"), std::string::npos) << vault.error().message;
}

TEST_F(SigningKeyUriTest, AnEncryptedKeyIsRefusedAsBefore) {
  const auto encrypted = dir_.path() / "encrypted.key";
  auto made = shell(fmt::format("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 "
                                "-pass pass:secret -out {}",
                                encrypted.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto opened = open_signing_key(file_uri(encrypted));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::config);
  EXPECT_NE(opened.error().message.find("encrypted"), std::string::npos) << opened.error().message;
}

TEST(SigningKey, AKeyInMemoryHasNoUriAndANullKeyIsRefused) {
  auto key = generate_key(KeyType::ed25519);
  ASSERT_TRUE(key) << key.error().message;
  auto in_memory = SigningKey::from_key(std::move(*key));
  ASSERT_TRUE(in_memory) << in_memory.error().message;
  EXPECT_TRUE(in_memory->uri().empty());
  EXPECT_EQ(in_memory->digest(), nullptr);  // EdDSA hashes itself
  EXPECT_FALSE(SigningKey::from_key(nullptr));
}

// "sha256" for SHA2-256: the name `openssl dgst` takes as an option.
std::string digest_option(const EVP_MD* md) {
  std::string name = OBJ_nid2sn(EVP_MD_get_type(md));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// Raw signatures, checked by `openssl dgst` (`openssl pkeyutl -rawin` for Ed25519).
class SigningKeySignatureTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(SigningKeySignatureTest, ASignatureVerifiesWithTheOpensslCommandLine) {
  TempDir dir("ca-key-sign");
  auto key = generate_key(GetParam());
  ASSERT_TRUE(key) << key.error().message;
  ASSERT_TRUE(write_private_key_file(dir / "key.pem", key->get()));
  auto signing_key = open_signing_key(file_uri(dir / "key.pem"));
  ASSERT_TRUE(signing_key) << signing_key.error().message;
  const std::string text = "seq 7: the audit checkpoint";
  const std::vector<uint8_t> data(text.begin(), text.end());
  auto signature = signing_key->sign(data);
  ASSERT_TRUE(signature) << signature.error().message;
  write_bytes(dir / "data", data);
  write_bytes(dir / "signature", *signature);
  auto pub = shell(fmt::format("openssl pkey -in {} -pubout -out {}", (dir / "key.pem").string(),
                               (dir / "pub.pem").string()));
  ASSERT_EQ(pub.exit_code, 0) << pub.output;
  const EVP_MD* md = signing_key->digest();
  const std::string verify =
      md ? fmt::format("openssl dgst -{} -verify {} -signature {} {}", digest_option(md), (dir / "pub.pem").string(),
                       (dir / "signature").string(), (dir / "data").string())
         : fmt::format("openssl pkeyutl -verify -pubin -inkey {} -rawin -in {} -sigfile {}", (dir / "pub.pem").string(),
                       (dir / "data").string(), (dir / "signature").string());
  auto verified = shell(verify);
  EXPECT_EQ(verified.exit_code, 0) << verify << "\n" << verified.output;
  EXPECT_NE(verified.output.find("Verified"), std::string::npos) << verified.output;
  // One bit changed: refused.
  (*signature)[signature->size() / 2] ^= 0x01;
  write_bytes(dir / "signature", *signature);
  EXPECT_NE(shell(verify).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, SigningKeySignatureTest,
                         ::testing::Values(KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::ed25519),
                         [](const auto& info) { return fixtures::test_name(info.param); });

}  // namespace
}  // namespace ca::crypto
