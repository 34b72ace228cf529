// CRLs written by our DER writer, checked by the openssl command line.
#include "crypto/crl_builder.hpp"

#include "core/openssl_owners.hpp"

#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "support/temp_dir.hpp"

namespace ca::crypto {
namespace {

class CrlBuilderTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto r = testing::shell(fmt::format("openssl req -x509 {} -nodes -subj '/CN=CRL Test CA/O=Example' -keyout {} -out {}",
                                        GetParam(), (dir / "ca.key").string(), (dir / "ca.pem").string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    FILE* f = fopen((dir / "ca.pem").c_str(), "r");
    ASSERT_TRUE(f);
    ca.reset(PEM_read_X509(f, nullptr, nullptr, nullptr));
    fclose(f);
    f = fopen((dir / "ca.key").c_str(), "r");
    ASSERT_TRUE(f);
    key.reset(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
    fclose(f);
    ASSERT_TRUE(ca && key);
  }
  std::string write(const std::vector<uint8_t>& der) {
    auto p = dir / "crl.der";
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(der.data()), static_cast<std::streamsize>(der.size()));
    return p.string();
  }
  testing::TempDir dir{"ca-crl"};
  ossl::UniquePtr<X509> ca;
  ossl::UniquePtr<EVP_PKEY> key;
};

TEST_P(CrlBuilderTest, FullCrlVerifiesAndListsEntriesWithReasonsAndDates) {
  auto now = std::chrono::system_clock::now();
  int64_t t = std::chrono::system_clock::to_time_t(now);
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("10001", t - 10, 1, t - 3600), *CrlEntry::from_hex("ff0001", t, 6),
                                *CrlEntry::from_hex("7f", t, 0), *CrlEntry::from_hex("80", t, 5)};
  auto der = build_crl(ca.get(), key.get(), {7, std::nullopt, now, now + std::chrono::hours(24)}, entries);
  ASSERT_TRUE(der) << der.error().message;
  auto file = write(*der);
  auto verify = testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", file, (dir / "ca.pem").string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find("verify OK"), std::string::npos) << verify.output;
  auto text = testing::shell(fmt::format("openssl crl -inform DER -in {} -noout -text", file)).output;
  EXPECT_NE(text.find("X509v3 CRL Number: \n                7"), std::string::npos) << text;
  EXPECT_NE(text.find("Serial Number: 010001"), std::string::npos) << text;
  EXPECT_NE(text.find("Serial Number: 7F"), std::string::npos) << text;
  EXPECT_NE(text.find("Serial Number: 80"), std::string::npos) << text;  // DER has a leading zero byte
  EXPECT_NE(text.find("Key Compromise"), std::string::npos) << text;
  EXPECT_NE(text.find("Certificate Hold"), std::string::npos) << text;
  EXPECT_NE(text.find("Invalidity Date"), std::string::npos) << text;
  EXPECT_NE(text.find("Authority Key Identifier"), std::string::npos) << text;
  EXPECT_EQ(text.find("Delta CRL Indicator"), std::string::npos) << text;
}

TEST_P(CrlBuilderTest, DeltaCrlCarriesACriticalIndicatorAndRemoveFromCrl) {
  auto now = std::chrono::system_clock::now();
  int64_t t = std::chrono::system_clock::to_time_t(now);
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("20001", t, 8)};
  auto der = build_crl(ca.get(), key.get(), {9, 7, now, now + std::chrono::hours(1)}, entries);
  ASSERT_TRUE(der) << der.error().message;
  auto file = write(*der);
  EXPECT_EQ(testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", file,
                                       (dir / "ca.pem").string())).exit_code, 0);
  auto text = testing::shell(fmt::format("openssl crl -inform DER -in {} -noout -text", file)).output;
  EXPECT_NE(text.find("Delta CRL Indicator: critical"), std::string::npos) << text;
  EXPECT_NE(text.find("Remove From CRL"), std::string::npos) << text;
}

TEST_P(CrlBuilderTest, EmptyCrlIsValid) {
  auto now = std::chrono::system_clock::now();
  auto der = build_crl(ca.get(), key.get(), {1, std::nullopt, now, now + std::chrono::hours(1)}, {});
  ASSERT_TRUE(der);
  EXPECT_EQ(testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", write(*der),
                                       (dir / "ca.pem").string())).exit_code, 0);
}

INSTANTIATE_TEST_SUITE_P(KeyTypes, CrlBuilderTest,
                         ::testing::Values("-newkey ec -pkeyopt ec_paramgen_curve:P-256",
                                           "-newkey ec -pkeyopt ec_paramgen_curve:P-384", "-newkey rsa:2048",
                                           "-newkey ed25519"));

TEST(CrlEntryTest, ParsesHexAndOrdersNumerically) {
  EXPECT_FALSE(CrlEntry::from_hex("xyz", 0, 0));
  EXPECT_FALSE(CrlEntry::from_hex(std::string(41, 'f'), 0, 0));
  auto a = *CrlEntry::from_hex("ff", 0, 0), b = *CrlEntry::from_hex("100", 0, 0), c = *CrlEntry::from_hex("0100", 0, 0);
  EXPECT_TRUE(a < b);
  EXPECT_FALSE(b < a);
  EXPECT_TRUE(b.same_serial(c));
}

}  // namespace
}  // namespace ca::crypto
