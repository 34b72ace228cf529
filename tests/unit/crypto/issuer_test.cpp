// crypto/issuer: certificates, CRLs, OCSP responses and raw signatures made through one Issuer
// opened from a certificate file and a key URI, each checked with the openssl command line.
#include "crypto/issuer.hpp"

#include <cctype>
#include <ctime>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/ocsp.h>

#include "core/files.hpp"
#include "crypto/crl_builder.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using fixtures::day_spec;
using fixtures::Issued;

void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

class IssuerTest : public ::testing::TestWithParam<KeyType> {
 protected:
  void SetUp() override {
    auto ca = fixtures::make_self_signed_ca(GetParam());
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    ASSERT_TRUE(write_certificate_file(dir_ / "ca.pem", ca_.cert.get()));
    ASSERT_TRUE(write_private_key_file(dir_ / "ca.key", ca_.key.get()));
    auto issuer = Issuer::open(dir_ / "ca.pem", file_uri(dir_ / "ca.key"));
    ASSERT_TRUE(issuer) << issuer.error().message;
    issuer_.emplace(std::move(*issuer));
  }

  // A leaf (or a delegated OCSP responder) certificate signed through the issuer, and its key.
  Issued issue(const std::string& serial, bool ocsp_responder = false) {
    Issued leaf;
    auto key = generate_key(KeyType::ec_p256);
    EXPECT_TRUE(key) << key.error().message;
    leaf.key = std::move(*key);
    auto name = parse_name(ocsp_responder ? "CN=OCSP Responder,O=Example" : "CN=leaf.example,O=Example");
    EXPECT_TRUE(name) << name.error().message;
    leaf.subject = std::move(*name);
    CertificateSpec spec = day_spec(leaf.subject.get(), leaf.key.get(), serial);
    spec.key_usage = {"digitalSignature"};
    spec.extended_key_usage = {ocsp_responder ? "OCSPSigning" : "clientAuth"};
    auto cert = issuer_->sign_certificate(spec);
    EXPECT_TRUE(cert) << cert.error().message;
    if (cert) leaf.cert = std::move(*cert);
    return leaf;
  }

  TempDir dir_{"ca-issuer"};
  Issued ca_;
  std::optional<Issuer> issuer_;
};

TEST_P(IssuerTest, ACertificateSignedThroughTheIssuerVerifies) {
  Issued leaf = issue("1001");
  ASSERT_TRUE(leaf.cert);
  ASSERT_TRUE(write_certificate_file(dir_ / "leaf.pem", leaf.cert.get()));
  auto out = shell(fmt::format("openssl verify -x509_strict -purpose sslclient -CAfile {} {}", (dir_ / "ca.pem").string(),
                               (dir_ / "leaf.pem").string()));
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find(": OK"), std::string::npos) << out.output;
}

TEST_P(IssuerTest, ACrlSignedThroughTheIssuerVerifies) {
  const auto now = std::chrono::system_clock::now();
  const int64_t t = std::chrono::system_clock::to_time_t(now);
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("1001", t - 60, 1)};
  auto der = build_crl(*issuer_, {3, std::nullopt, now, now + std::chrono::hours(1)}, entries);
  ASSERT_TRUE(der) << der.error().message;
  write_bytes(dir_ / "crl.der", *der);
  auto out = shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout", (dir_ / "crl.der").string(),
                               (dir_ / "ca.pem").string()));
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("verify OK"), std::string::npos) << out.output;
}

TEST_P(IssuerTest, AnOcspResponseSignedByADelegatedResponderVerifies) {
  Issued leaf = issue("1001");
  Issued responder = issue("1002", true);
  ASSERT_TRUE(leaf.cert && responder.cert);
  auto responder_issuer = fixtures::issuer_of(responder.cert.get(), responder.key.get());
  ASSERT_TRUE(responder_issuer) << responder_issuer.error().message;

  ossl::UniquePtr<OCSP_BASICRESP> basic(OCSP_BASICRESP_new());
  ossl::UniquePtr<OCSP_CERTID> id(OCSP_cert_to_id(EVP_sha1(), leaf.cert.get(), ca_.cert.get()));
  ossl::UniquePtr<ASN1_STRING> this_update(ASN1_GENERALIZEDTIME_set(nullptr, std::time(nullptr)));
  ASSERT_TRUE(basic && id && this_update);
  ASSERT_TRUE(OCSP_basic_add1_status(basic.get(), id.get(), V_OCSP_CERTSTATUS_GOOD, 0, nullptr, this_update.get(),
                                     nullptr));
  ASSERT_TRUE(responder_issuer->sign_ocsp_response(basic.get()));
  ossl::UniquePtr<OCSP_RESPONSE> response(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  ASSERT_TRUE(response);
  unsigned char* der = nullptr;
  const int length = i2d_OCSP_RESPONSE(response.get(), &der);
  ASSERT_GT(length, 0);
  write_bytes(dir_ / "response.der", std::vector<uint8_t>(der, der + length));
  OPENSSL_free(der);
  ASSERT_TRUE(write_certificate_file(dir_ / "leaf.pem", leaf.cert.get()));
  auto out = shell(fmt::format("openssl ocsp -respin {} -CAfile {} -issuer {} -cert {}", (dir_ / "response.der").string(),
                               (dir_ / "ca.pem").string(), (dir_ / "ca.pem").string(), (dir_ / "leaf.pem").string()));
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("Response verify OK"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("leaf.pem: good"), std::string::npos) << out.output;
}

TEST_P(IssuerTest, ARawSignatureVerifiesWithTheCertificatesKey) {
  const std::string text = "readiness";
  const std::vector<uint8_t> data(text.begin(), text.end());
  auto signature = issuer_->sign(data);
  ASSERT_TRUE(signature) << signature.error().message;
  write_bytes(dir_ / "data", data);
  write_bytes(dir_ / "signature", *signature);
  auto pub = shell(fmt::format("openssl x509 -in {} -pubkey -noout -out {}", (dir_ / "ca.pem").string(),
                               (dir_ / "pub.pem").string()));
  ASSERT_EQ(pub.exit_code, 0) << pub.output;
  const EVP_MD* md = issuer_->key().digest();
  std::string digest = md ? OBJ_nid2sn(EVP_MD_get_type(md)) : "";
  for (char& c : digest) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string verify =
      md ? fmt::format("openssl dgst -{} -verify {} -signature {} {}", digest, (dir_ / "pub.pem").string(),
                       (dir_ / "signature").string(), (dir_ / "data").string())
         : fmt::format("openssl pkeyutl -verify -pubin -inkey {} -rawin -in {} -sigfile {}", (dir_ / "pub.pem").string(),
                       (dir_ / "data").string(), (dir_ / "signature").string());
  auto out = shell(verify);
  EXPECT_EQ(out.exit_code, 0) << verify << "\n" << out.output;
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, IssuerTest,
                         ::testing::Values(KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::ed25519),
                         [](const auto& info) { return fixtures::test_name(info.param); });

TEST(Issuer, RefusesAKeyThatIsNotTheCertificatesNamingBoth) {
  TempDir dir("ca-issuer-mismatch");
  auto ca = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Mismatch CA,O=Example");
  ASSERT_TRUE(ca) << ca.error().message;
  auto other = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_TRUE(write_certificate_file(dir / "ca.pem", ca->cert.get()));
  ASSERT_TRUE(write_private_key_file(dir / "other.key", other->get()));
  auto issuer = Issuer::open(dir / "ca.pem", file_uri(dir / "other.key"));
  ASSERT_FALSE(issuer);
  EXPECT_EQ(issuer.error().code, ErrorCode::config);
  EXPECT_NE(issuer.error().message.find("other.key"), std::string::npos) << issuer.error().message;
  EXPECT_NE(issuer.error().message.find("CN=Mismatch CA"), std::string::npos) << issuer.error().message;
}

TEST(Issuer, ASelfSignedRootIssuesAsItself) {
  TempDir dir("ca-issuer-root");
  auto key = generate_key(KeyType::ec_p384);
  auto name = parse_name("CN=Root,O=Example");
  ASSERT_TRUE(key && name);
  CertificateSpec spec = day_spec(name->get(), key->get(), "1");
  spec.is_ca = true;
  spec.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
  auto signing_key = SigningKey::from_key(ossl::up_ref(key->get()));
  ASSERT_TRUE(signing_key) << signing_key.error().message;
  auto root = Issuer::self_signed(spec, std::move(*signing_key));
  ASSERT_TRUE(root) << root.error().message;
  ASSERT_TRUE(write_certificate_file(dir / "root.pem", root->certificate()));
  auto out = shell(fmt::format("openssl verify -x509_strict -CAfile {0} {0}", (dir / "root.pem").string()));
  EXPECT_EQ(out.exit_code, 0) << out.output;
}

}  // namespace
}  // namespace ca::crypto
