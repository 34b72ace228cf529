// CRLs written by our DER writer, checked by the openssl command line.
#include "crypto/crl_builder.hpp"

#include "core/openssl_owners.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

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
  // The CA certificate and key made by `openssl req` above (throws when they do not match).
  Issuer issuer() const { return fixtures::issuer_of(ca.get(), key.get()).value(); }
  testing::TempDir dir{"ca-crl"};
  ossl::UniquePtr<X509> ca;
  ossl::UniquePtr<EVP_PKEY> key;
};

TEST_P(CrlBuilderTest, FullCrlVerifiesAndListsEntriesWithReasonsAndDates) {
  auto now = std::chrono::system_clock::now();
  int64_t t = std::chrono::system_clock::to_time_t(now);
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("10001", t - 10, 1, t - 3600), *CrlEntry::from_hex("ff0001", t, 6),
                                *CrlEntry::from_hex("7f", t, 0), *CrlEntry::from_hex("80", t, 5)};
  auto der = build_crl(issuer(), {7, std::nullopt, now, now + std::chrono::hours(24)}, entries);
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
  auto der = build_crl(issuer(), {9, 7, now, now + std::chrono::hours(1)}, entries);
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
  auto der = build_crl(issuer(), {1, std::nullopt, now, now + std::chrono::hours(1)}, {});
  ASSERT_TRUE(der);
  EXPECT_EQ(testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", write(*der),
                                       (dir / "ca.pem").string())).exit_code, 0);
}

// The lines openssl prints for one extension: from its heading up to the next extension or the
// end of the extensions.
std::string extension_text(const std::string& text, std::string_view heading) {
  auto start = text.find(heading);
  if (start == std::string::npos) return {};
  auto end = std::min(text.find("X509v3 ", start + heading.size()), text.find("Signature Algorithm", start));
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST_P(CrlBuilderTest, FullCrlNamesItsPartitionAndItsDeltas) {
  auto now = std::chrono::system_clock::now();
  CrlParams params{12, std::nullopt, now, now + std::chrono::hours(24)};
  params.issuing_distribution_point = "http://127.0.0.1:8080/crl/MasterCRL-3.crl";
  params.freshest_crl = "http://127.0.0.1:8080/crl/MasterCRL-3-delta.crl";
  auto der = build_crl(issuer(), params, {});
  ASSERT_TRUE(der) << der.error().message;
  auto file = write(*der);
  auto verify = testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", file,
                                           (dir / "ca.pem").string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  auto text = testing::shell(fmt::format("openssl crl -inform DER -in {} -noout -text", file)).output;

  auto idp = extension_text(text, "X509v3 Issuing Distribution Point: critical");
  ASSERT_FALSE(idp.empty()) << text;
  EXPECT_NE(idp.find("Full Name:"), std::string::npos) << idp;
  EXPECT_NE(idp.find("URI:http://127.0.0.1:8080/crl/MasterCRL-3.crl\n"), std::string::npos) << idp;
  // No other IDP field: the partition holds every kind of certificate, for every reason.
  for (const char* absent : {"Only", "Reasons", "Indirect"}) {
    EXPECT_EQ(idp.find(absent), std::string::npos) << absent << "\n" << idp;
  }

  auto freshest = extension_text(text, "X509v3 Freshest CRL");
  ASSERT_FALSE(freshest.empty()) << text;
  EXPECT_EQ(freshest.find("critical"), std::string::npos) << freshest;
  EXPECT_NE(freshest.find("URI:http://127.0.0.1:8080/crl/MasterCRL-3-delta.crl"), std::string::npos) << freshest;
  EXPECT_EQ(text.find("Delta CRL Indicator"), std::string::npos) << text;
}

TEST_P(CrlBuilderTest, DeltaCrlNamesItsPartitionButNoFreshestCrl) {
  auto now = std::chrono::system_clock::now();
  int64_t t = std::chrono::system_clock::to_time_t(now);
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("30001", t, 1)};
  CrlParams params{13, 12, now, now + std::chrono::hours(1)};
  params.issuing_distribution_point = "http://127.0.0.1:8080/crl/MasterCRL-3.crl";
  params.freshest_crl = "http://127.0.0.1:8080/crl/MasterCRL-3-delta.crl";
  auto der = build_crl(issuer(), params, entries);
  ASSERT_TRUE(der) << der.error().message;
  auto file = write(*der);
  EXPECT_EQ(testing::shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify", file,
                                       (dir / "ca.pem").string())).exit_code, 0);
  auto text = testing::shell(fmt::format("openssl crl -inform DER -in {} -noout -text", file)).output;
  auto idp = extension_text(text, "X509v3 Issuing Distribution Point: critical");
  EXPECT_NE(idp.find("URI:http://127.0.0.1:8080/crl/MasterCRL-3.crl\n"), std::string::npos) << text;
  EXPECT_NE(text.find("X509v3 Delta CRL Indicator: critical"), std::string::npos) << text;
  EXPECT_EQ(text.find("Freshest CRL"), std::string::npos) << text;
  EXPECT_EQ(text.find("MasterCRL-3-delta.crl"), std::string::npos) << text;
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

// Cases that need a CA but not the openssl command line: one made in-process is enough.
class CrlWithInProcessCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto issued = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=CRL Test CA,O=Example");
    ASSERT_TRUE(issued) << issued.error().message;
    ca = std::move(*issued);
  }
  fixtures::Issued ca;
};

TEST_F(CrlWithInProcessCaTest, UrisThatAreNotAsciiAreRefused) {
  auto now = std::chrono::system_clock::now();
  const struct {
    const char* name;
    void (*edit)(CrlParams&);
    const char* message_part;
  } cases[] = {
      {"idp space", [](CrlParams& p) { p.issuing_distribution_point = "http://x/a b.crl"; },
       "issuing distribution point URI 'http://x/a b.crl' must be printable ASCII"},
      {"freshest utf-8", [](CrlParams& p) { p.freshest_crl = "http://x/\xC3\xA9.crl"; }, "freshest CRL URI"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    CrlParams params{1, std::nullopt, now, now + std::chrono::hours(1)};
    c.edit(params);
    auto der = build_crl(fixtures::issuer_of(ca.cert.get(), ca.key.get()).value(), params, {});
    ASSERT_FALSE(der);
    EXPECT_EQ(der.error().code, ErrorCode::bad_request);
    EXPECT_NE(der.error().message.find(c.message_part), std::string::npos) << der.error().message;
  }
}

// Numbers are positive DER INTEGERs: minimal length, a 0x00 in front when the top bit is set, up to
// 2^63 - 1. OpenSSL's decoder refuses non-minimal encodings and get_uint64 refuses negative ones.
TEST_F(CrlWithInProcessCaTest, LargeCrlNumbersReadBackThroughOpenssl) {
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
  const struct {
    uint64_t number;
    std::optional<uint64_t> delta_base;
    std::vector<uint8_t> number_der;  // the CRL Number extension's value
  } cases[] = {
      {0x0000100100000001, std::nullopt, {0x02, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x01}},
      {0x0000100100000002, 0x0000100100000001, {0x02, 0x06, 0x10, 0x01, 0x00, 0x00, 0x00, 0x02}},
      {kMax, std::nullopt, {0x02, 0x08, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
      {kMax, kMax - 1, {0x02, 0x08, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
      {0x80, 0x7f, {0x02, 0x02, 0x00, 0x80}},
      {0x8000000000, 0xff, {0x02, 0x06, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00}},
      {0, std::nullopt, {0x02, 0x01, 0x00}},
  };
  auto read_number = [](X509_CRL* crl, int nid) -> std::optional<uint64_t> {
    int critical = -1;
    ossl::UniquePtr<ASN1_STRING> number(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, nid, &critical, nullptr)));
    uint64_t value = 0;
    if (!number || ASN1_INTEGER_get_uint64(&value, number.get()) != 1) return std::nullopt;
    return value;
  };
  auto now = std::chrono::system_clock::now();
  for (const auto& c : cases) {
    SCOPED_TRACE(fmt::format("number {:#x}, delta base {:#x}", c.number, c.delta_base.value_or(0)));
    CrlParams params{c.number, c.delta_base, now, now + std::chrono::hours(1)};
    auto der = build_crl(fixtures::issuer_of(ca.cert.get(), ca.key.get()).value(), params, {});
    ASSERT_TRUE(der) << der.error().message;
    const unsigned char* p = der->data();
    ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der->size())));
    ASSERT_TRUE(crl) << ossl::drain_errors();
    EXPECT_EQ(p, der->data() + der->size());
    EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.cert.get())), 1);
    EXPECT_EQ(read_number(crl.get(), NID_crl_number), std::optional<uint64_t>(c.number));
    const ASN1_OCTET_STRING* number_der =
        X509_EXTENSION_get_data(X509_CRL_get_ext(crl.get(), X509_CRL_get_ext_by_NID(crl.get(), NID_crl_number, -1)));
    ASSERT_TRUE(number_der);
    EXPECT_EQ(std::vector<uint8_t>(ASN1_STRING_get0_data(number_der),
                                   ASN1_STRING_get0_data(number_der) + ASN1_STRING_length(number_der)),
              c.number_der);
    EXPECT_EQ(read_number(crl.get(), NID_delta_crl), c.delta_base);
  }
}

// Partitioned CRLs as a relying party sees them: `openssl verify -crl_check` takes a CRL for a
// certificate only when the CRL's Issuing Distribution Point names the certificate's CRL
// distribution point.
class PartitionedCrlTest : public ::testing::Test {
 protected:
  static constexpr const char* kPartition0 = "http://127.0.0.1:8080/crl/MasterCRL-0.crl";
  static constexpr const char* kPartition1 = "http://127.0.0.1:8080/crl/MasterCRL-1.crl";

  void SetUp() override {
    auto issued = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Partition Test CA,O=Example");
    ASSERT_TRUE(issued) << issued.error().message;
    ca = std::move(*issued);
    ASSERT_TRUE(write_certificate_file(dir / "ca.pem", ca.cert.get()));
    ASSERT_NO_FATAL_FAILURE(issue_leaf("good", "a1"));
    ASSERT_NO_FATAL_FAILURE(issue_leaf("revoked", "a2"));
  }

  // A leaf in partition 0, written to <name>.pem.
  void issue_leaf(const std::string& name, const std::string& serial_hex) {
    auto leaf_key = generate_key(KeyType::ec_p256);
    ASSERT_TRUE(leaf_key) << leaf_key.error().message;
    auto subject = parse_name(fmt::format("CN={}.example,O=Example", name));
    ASSERT_TRUE(subject) << subject.error().message;
    CertificateSpec spec = fixtures::day_spec(subject->get(), leaf_key->get(), serial_hex);
    spec.key_usage = {"digitalSignature"};
    spec.crl_distribution_points = {kPartition0};
    auto cert = sign_certificate(spec, ca.cert.get(), ca.key.get());
    ASSERT_TRUE(cert) << cert.error().message;
    ASSERT_TRUE(write_certificate_file(dir / (name + ".pem"), cert->get()));
  }

  // A full CRL for the partition `idp_uri` revoking serial a2, written as PEM to crl.pem.
  void write_crl(const std::string& idp_uri) {
    auto now = std::chrono::system_clock::now();
    int64_t t = std::chrono::system_clock::to_time_t(now);
    std::vector<CrlEntry> entries{*CrlEntry::from_hex("a2", t - 60, 1)};
    CrlParams params{5, std::nullopt, now - std::chrono::minutes(1), now + std::chrono::hours(1)};
    params.issuing_distribution_point = idp_uri;
    auto der = build_crl(fixtures::issuer_of(ca.cert.get(), ca.key.get()).value(), params, entries);
    ASSERT_TRUE(der) << der.error().message;
    std::string pem = fixtures::der_to_pem("X509 CRL", std::string(der->begin(), der->end()));
    ASSERT_FALSE(pem.empty());
    testing::write_file(dir / "crl.pem", pem);
  }

  testing::Shell verify(const std::string& leaf) {
    return testing::shell(fmt::format("openssl verify -crl_check -CAfile {} -CRLfile {} {}", (dir / "ca.pem").string(),
                                      (dir / "crl.pem").string(), (dir / leaf).string()));
  }

  testing::TempDir dir{"ca-crl-partition"};
  fixtures::Issued ca;
};

TEST_F(PartitionedCrlTest, OpensslUsesTheCrlOfTheCertificatesPartition) {
  ASSERT_NO_FATAL_FAILURE(write_crl(kPartition0));
  auto good = verify("good.pem");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("good.pem: OK"), std::string::npos) << good.output;

  auto revoked = verify("revoked.pem");
  EXPECT_NE(revoked.exit_code, 0) << revoked.output;
  EXPECT_NE(revoked.output.find("error 23 at 0 depth lookup: certificate revoked"), std::string::npos)
      << revoked.output;
  EXPECT_NE(revoked.output.find("revoked.pem: verification failed"), std::string::npos) << revoked.output;
}

TEST_F(PartitionedCrlTest, OpensslRefusesTheCrlOfAnotherPartition) {
  ASSERT_NO_FATAL_FAILURE(write_crl(kPartition1));
  for (const char* leaf : {"good.pem", "revoked.pem"}) {
    SCOPED_TRACE(leaf);
    auto out = verify(leaf);
    EXPECT_NE(out.exit_code, 0) << out.output;
    // OpenSSL 3.0 finds the CRL but, its scope not covering the certificate's CDP, will not use it.
    EXPECT_NE(out.output.find("error 44 at 0 depth lookup: different CRL scope"), std::string::npos) << out.output;
    EXPECT_EQ(out.output.find("certificate revoked"), std::string::npos) << out.output;
  }
}

}  // namespace
}  // namespace ca::crypto
