#include "crypto/certificate_builder.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "crypto/csr.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using fixtures::day_spec;
using fixtures::Issued;
using fixtures::make_self_signed_ca;

std::vector<uint8_t> octets(const ASN1_OCTET_STRING* s) {
  if (!s) return {};
  const unsigned char* p = ASN1_STRING_get0_data(s);
  return {p, p + ASN1_STRING_length(s)};
}

std::vector<uint8_t> extension_value(X509* cert, int nid) {
  int at = X509_get_ext_by_NID(cert, nid, -1);
  return at < 0 ? std::vector<uint8_t>{} : octets(X509_EXTENSION_get_data(X509_get_ext(cert, at)));
}

bool extension_critical(X509* cert, int nid) {
  int at = X509_get_ext_by_NID(cert, nid, -1);
  return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, at)) == 1;
}

std::vector<uint8_t> spki_der(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  std::vector<uint8_t> out(der, der + std::max(len, 0));
  OPENSSL_free(der);
  return out;
}

std::vector<uint8_t> pubkey_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  std::vector<uint8_t> out(der, der + std::max(len, 0));
  OPENSSL_free(der);
  return out;
}

// A server certificate with every optional extension filled in.
Result<Issued> issue_leaf(const Issued& ca, std::string serial_hex = "1a2b3c") {
  Issued leaf;
  CA_TRY(leaf.key, generate_key(KeyType::ec_p256));
  CA_TRY(leaf.subject, parse_name("CN=www.example.com,O=Example"));
  CertificateSpec spec = day_spec(leaf.subject.get(), leaf.key.get(), std::move(serial_hex));
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  spec.extended_key_usage = {"serverAuth", "clientAuth"};
  spec.dns_names = {"www.example.com", "example.com"};
  spec.ip_addresses = {"192.0.2.10", "2001:db8::1"};
  spec.emails = {"ops@example.com"};
  spec.crl_distribution_points = {"http://crl.example.com/ca.crl"};
  spec.ocsp_url = "http://ocsp.example.com";
  spec.ca_issuers_url = "http://ca.example.com/ca.crt";
  CA_TRY(leaf.cert, sign_certificate(spec, ca.cert.get(), ca.key.get()));
  return leaf;
}

struct IssuerCase {
  KeyType type;
  int signature_nid;
};

void PrintTo(const IssuerCase& c, std::ostream* os) { *os << key_type_name(c.type); }

class IssuerKeyTypes : public ::testing::TestWithParam<IssuerCase> {};

TEST_P(IssuerKeyTypes, CaAndLeafVerifyWithOpenssl) {
  auto ca = make_self_signed_ca(GetParam().type);
  ASSERT_TRUE(ca) << ca.error().message;
  auto leaf = issue_leaf(*ca);
  ASSERT_TRUE(leaf) << leaf.error().message;
  EXPECT_EQ(X509_get_signature_nid(ca->cert.get()), GetParam().signature_nid);
  EXPECT_EQ(X509_get_signature_nid(leaf->cert.get()), GetParam().signature_nid);

  // The SubjectPublicKeyInfo is exactly the key's, and the certificate hands back an equal key.
  for (const Issued* issued : {&*ca, &*leaf}) {
    EXPECT_EQ(spki_der(issued->cert.get()), pubkey_der(issued->key.get()));
    EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(issued->cert.get()), issued->key.get()), 1);
  }

  TempDir dir("ca-builder");
  ASSERT_TRUE(write_certificate_file(dir / "ca.pem", ca->cert.get()));
  ASSERT_TRUE(write_certificate_file(dir / "leaf.pem", leaf->cert.get()));
  // -x509_strict adds RFC 5280 profile checks (key identifiers, critical basicConstraints, ...).
  for (const char* cert : {"ca.pem", "leaf.pem"}) {
    SCOPED_TRACE(cert);
    auto out = shell("openssl verify -x509_strict -purpose sslserver -CAfile " + (dir / "ca.pem").string() + " " +
                     (dir / cert).string());
    EXPECT_EQ(out.exit_code, 0) << out.output;
    EXPECT_NE(out.output.find(std::string(cert) + ": OK"), std::string::npos) << out.output;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIssuers, IssuerKeyTypes,
                         ::testing::Values(IssuerCase{KeyType::ec_p256, NID_ecdsa_with_SHA256},
                                           IssuerCase{KeyType::ec_p384, NID_ecdsa_with_SHA384},
                                           IssuerCase{KeyType::rsa_2048, NID_sha256WithRSAEncryption},
                                           IssuerCase{KeyType::ed25519, NID_ED25519}),
                         [](const ::testing::TestParamInfo<IssuerCase>& info) {
                           return fixtures::test_name(info.param.type);
                         });

class IssuedChain : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = make_self_signed_ca(KeyType::ec_p256);
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    auto leaf = issue_leaf(ca_);
    ASSERT_TRUE(leaf) << leaf.error().message;
    leaf_ = std::move(*leaf);
  }

  std::string openssl_text(X509* cert) {
    auto path = dir_ / "cert.pem";
    EXPECT_TRUE(write_certificate_file(path, cert));
    auto out = shell("openssl x509 -noout -text -in " + path.string());
    EXPECT_EQ(out.exit_code, 0) << out.output;
    return out.output;
  }

  TempDir dir_{"ca-builder"};
  Issued ca_, leaf_;
};

TEST_F(IssuedChain, LeafTextShowsItsExtensions) {
  std::string text = openssl_text(leaf_.cert.get());
  for (const char* expected : {
           "Version: 3 (0x2)",
           "Serial Number: 1715004 (0x1a2b3c)",
           "Issuer: O = Example, CN = Test CA",
           "Subject: O = Example, CN = www.example.com",
           "X509v3 Basic Constraints: critical\n                CA:FALSE",
           "X509v3 Key Usage: critical\n                Digital Signature, Key Encipherment",
           "X509v3 Extended Key Usage: \n                TLS Web Server Authentication, TLS Web Client Authentication",
           "DNS:www.example.com, DNS:example.com, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:1, "
           "email:ops@example.com",
           "X509v3 CRL Distribution Points: \n                Full Name:\n                  "
           "URI:http://crl.example.com/ca.crl",
           "OCSP - URI:http://ocsp.example.com",
           "CA Issuers - URI:http://ca.example.com/ca.crt",
           "X509v3 Subject Key Identifier",
           "X509v3 Authority Key Identifier",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
  EXPECT_EQ(text.find("OCSP No Check"), std::string::npos);
}

TEST_F(IssuedChain, CaTextShowsCaConstraints) {
  std::string text = openssl_text(ca_.cert.get());
  for (const char* expected : {"CA:TRUE, pathlen:0", "Digital Signature, Certificate Sign, CRL Sign"})
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  // DER of basicConstraints { cA TRUE (0xff, as DER demands), pathLen 0 }.
  EXPECT_EQ(extension_value(ca_.cert.get(), NID_basic_constraints),
            (std::vector<uint8_t>{0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00}));
  EXPECT_EQ(extension_value(leaf_.cert.get(), NID_basic_constraints), (std::vector<uint8_t>{0x30, 0x00}));
}

TEST_F(IssuedChain, KeyIdentifiersChain) {
  std::vector<uint8_t> ca_ski = octets(X509_get0_subject_key_id(ca_.cert.get()));
  ASSERT_EQ(ca_ski.size(), 20u);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(X509_pubkey_digest(ca_.cert.get(), EVP_sha1(), digest, &len), 1);
  EXPECT_EQ(ca_ski, std::vector<uint8_t>(digest, digest + len));
  EXPECT_EQ(octets(X509_get0_authority_key_id(ca_.cert.get())), ca_ski) << "self-signed: AKI = own SKI";
  EXPECT_EQ(octets(X509_get0_authority_key_id(leaf_.cert.get())), ca_ski);
  EXPECT_NE(octets(X509_get0_subject_key_id(leaf_.cert.get())), ca_ski);
  EXPECT_EQ(X509_check_issued(ca_.cert.get(), leaf_.cert.get()), X509_V_OK);
}

TEST_F(IssuedChain, SerialSubjectAndIssuerAreAsAsked) {
  EXPECT_EQ(serial_to_hex(X509_get0_serialNumber(leaf_.cert.get())), "1a2b3c");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(leaf_.cert.get()), leaf_.subject.get()), 0);
  EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(leaf_.cert.get()), X509_get_subject_name(ca_.cert.get())), 0);
  EXPECT_EQ(name_to_string(X509_get_issuer_name(leaf_.cert.get())), "CN=Test CA,O=Example");
  EXPECT_EQ(X509_get_version(leaf_.cert.get()), X509_VERSION_3);
  EXPECT_EQ(X509_verify(leaf_.cert.get(), ca_.key.get()), 1);
}

TEST_F(IssuedChain, OcspNoCheckOnlyWhenAsked) {
  EXPECT_LT(X509_get_ext_by_NID(leaf_.cert.get(), NID_id_pkix_OCSP_noCheck, -1), 0);
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  auto name = parse_name("CN=OCSP Signing Certificate,O=Example");
  ASSERT_TRUE(name) << name.error().message;
  CertificateSpec spec = day_spec(name->get(), key->get(), "2");
  spec.key_usage = {"digitalSignature"};
  spec.extended_key_usage = {"OCSPSigning"};
  spec.ocsp_no_check = true;
  auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(extension_value(cert->get(), NID_id_pkix_OCSP_noCheck), (std::vector<uint8_t>{0x05, 0x00}));
  EXPECT_NE(openssl_text(cert->get()).find("OCSP No Check"), std::string::npos);
}

TEST_F(IssuedChain, FreshestCrlOnlyWhenAsked) {
  EXPECT_LT(X509_get_ext_by_NID(leaf_.cert.get(), NID_freshest_crl, -1), 0);
  EXPECT_EQ(openssl_text(leaf_.cert.get()).find("Freshest CRL"), std::string::npos);

  CertificateSpec spec = day_spec(leaf_.subject.get(), leaf_.key.get(), "7");
  spec.crl_distribution_points = {"http://crl.example.com/ca.crl"};
  spec.freshest_crl = {"http://crl.example.com/ca-delta.crl", "ldap://ldap.example.com/cn=delta"};
  auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_FALSE(extension_critical(cert->get(), NID_freshest_crl));
  EXPECT_NE(X509_get_ext_by_NID(cert->get(), NID_freshest_crl, -1), -1);
  std::string text = openssl_text(cert->get());
  for (const char* expected : {
           "X509v3 Freshest CRL: \n                Full Name:\n                  "
           "URI:http://crl.example.com/ca-delta.crl\n                  URI:ldap://ldap.example.com/cn=delta",
           "X509v3 CRL Distribution Points: \n                Full Name:\n                  "
           "URI:http://crl.example.com/ca.crl",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << "missing: " << expected << "\n" << text;
  }
}

TEST_F(IssuedChain, EmptySubjectMakesSanCritical) {
  EXPECT_FALSE(extension_critical(leaf_.cert.get(), NID_subject_alt_name));
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  ossl::UniquePtr<X509_NAME> empty(X509_NAME_new());
  ASSERT_TRUE(empty);
  CertificateSpec spec = day_spec(empty.get(), key->get(), "3");
  spec.dns_names = {"only-in-san.example"};
  auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_TRUE(extension_critical(cert->get(), NID_subject_alt_name));
}

TEST_F(IssuedChain, ValidityUsesUtcTimeBefore2050) {
  using namespace std::chrono;
  const struct {
    sys_days day;
    int type;
  } cases[] = {
      {sys_days{year{2049} / 12 / 31}, V_ASN1_UTCTIME},
      {sys_days{year{2050} / 1 / 1}, V_ASN1_GENERALIZEDTIME},
      {sys_days{year{2100} / 6 / 1}, V_ASN1_GENERALIZEDTIME},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.type);
    CertificateSpec spec = day_spec(leaf_.subject.get(), leaf_.key.get(), "4");
    spec.not_after = c.day;
    auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
    ASSERT_TRUE(cert) << cert.error().message;
    EXPECT_EQ(ASN1_STRING_type(X509_get0_notAfter(cert->get())), c.type);
    EXPECT_EQ(ASN1_STRING_type(X509_get0_notBefore(cert->get())), V_ASN1_UTCTIME);
    EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert->get()), system_clock::to_time_t(c.day)), 0);
  }
}

TEST_F(IssuedChain, BadSpecsAreRejectedByName) {
  const struct {
    const char* name;
    void (*edit)(CertificateSpec&);
    ErrorCode code;
    const char* message_part;
  } cases[] = {
      {"key usage", [](CertificateSpec& s) { s.key_usage = {"digitalSignature", "fooUsage"}; },
       ErrorCode::bad_request, "unknown key usage 'fooUsage' (known: digitalSignature, "},
      {"eku", [](CertificateSpec& s) { s.extended_key_usage = {"anyThing"}; }, ErrorCode::bad_request,
       "unknown extended key usage 'anyThing'"},
      {"ipv4 range", [](CertificateSpec& s) { s.ip_addresses = {"300.1.1.1"}; }, ErrorCode::bad_request,
       "invalid IP address '300.1.1.1' for subjectAltName"},
      {"ip junk", [](CertificateSpec& s) { s.ip_addresses = {"1.2.3.4junk"}; }, ErrorCode::bad_request,
       "invalid IP address '1.2.3.4junk'"},
      {"ipv6", [](CertificateSpec& s) { s.ip_addresses = {"2001:db8:::1"}; }, ErrorCode::bad_request,
       "invalid IP address '2001:db8:::1'"},
      {"dns space", [](CertificateSpec& s) { s.dns_names = {"bad name.example"}; }, ErrorCode::bad_request,
       "DNS name 'bad name.example' must be printable ASCII"},
      {"empty email", [](CertificateSpec& s) { s.emails = {""}; }, ErrorCode::bad_request, "empty email address"},
      {"crl uri", [](CertificateSpec& s) { s.crl_distribution_points = {"http://x/\xC3\xA9"}; },
       ErrorCode::bad_request, "CRL distribution point URI"},
      {"freshest crl uri", [](CertificateSpec& s) { s.freshest_crl = {"http://x/a b"}; }, ErrorCode::bad_request,
       "freshest CRL URI 'http://x/a b' must be printable ASCII"},
      {"keyCertSign on a leaf", [](CertificateSpec& s) { s.key_usage = {"keyCertSign"}; }, ErrorCode::bad_request,
       "keyCertSign is only valid in a CA certificate"},
      {"validity", [](CertificateSpec& s) { s.not_after = s.not_before; }, ErrorCode::bad_request,
       "certificate validity ends before it begins"},
      {"serial", [](CertificateSpec& s) { s.serial_hex = "0"; }, ErrorCode::bad_request,
       "serial number must not be zero"},
      {"no key", [](CertificateSpec& s) { s.public_key = nullptr; }, ErrorCode::internal,
       "CertificateSpec needs a subject and a public key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    CertificateSpec spec = day_spec(leaf_.subject.get(), leaf_.key.get(), "5");
    c.edit(spec);
    auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
    ASSERT_FALSE(cert);
    EXPECT_EQ(cert.error().code, c.code);
    EXPECT_NE(cert.error().message.find(c.message_part), std::string::npos) << cert.error().message;
  }
}

TEST_F(IssuedChain, WrongKeysAreRefused) {
  auto other = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(other) << other.error().message;
  CertificateSpec spec = day_spec(leaf_.subject.get(), leaf_.key.get(), "6");

  auto mismatched = sign_certificate(spec, ca_.cert.get(), other->get());
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.error().message, "the issuer key is not the key of certificate 'CN=Test CA,O=Example'");

  auto self_signed = sign_certificate(spec, nullptr, other->get());
  ASSERT_FALSE(self_signed);
  EXPECT_EQ(self_signed.error().message, "a self-signed certificate must carry the public half of the signing key");
}

// The enrollment path: a CSR from the openssl command line in, a verifiable certificate out.
TEST_F(IssuedChain, CertificateForAParsedCsrVerifies) {
  auto req = shell("openssl req -new -nodes -newkey rsa:2048 -subj '/O=Example/CN=client.example' -addext "
                   "subjectAltName=DNS:client.example,IP:192.0.2.7 -keyout " + (dir_ / "k.pem").string() +
                   " -out " + (dir_ / "req.pem").string());
  ASSERT_EQ(req.exit_code, 0) << req.output;
  auto csr = parse_csr_pem(ca::testing::read_file(dir_ / "req.pem"));
  ASSERT_TRUE(csr) << csr.error().message;
  CertificateSpec spec = day_spec(csr->subject.get(), csr->public_key.get(), "abc");
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  spec.extended_key_usage = {"clientAuth"};
  spec.dns_names = csr->dns_names;
  spec.ip_addresses = csr->ip_addresses;
  auto cert = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(spki_der(cert->get()), pubkey_der(csr->public_key.get()));

  ASSERT_TRUE(write_certificate_file(dir_ / "ca.pem", ca_.cert.get()));
  ASSERT_TRUE(write_certificate_file(dir_ / "client.pem", cert->get()));
  auto out = shell("openssl verify -x509_strict -purpose sslclient -CAfile " + (dir_ / "ca.pem").string() + " " +
                   (dir_ / "client.pem").string());
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("client.pem: OK"), std::string::npos) << out.output;
  // The issued certificate and the CSR's private key belong together.
  auto key = load_private_key_file(dir_ / "k.pem");
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(X509_check_private_key(cert->get(), key->get()), 1);
}

TEST_F(IssuedChain, SignerIsReusable) {
  auto signer = CertificateSigner::create(ca_.cert.get(), ca_.key.get());
  ASSERT_TRUE(signer) << signer.error().message;
  EXPECT_EQ(signer->issuer(), ca_.cert.get());
  for (int i = 1; i <= 20; ++i) {
    CertificateSpec spec = day_spec(leaf_.subject.get(), leaf_.key.get(), fmt::format("{:x}", 1000 + i));
    spec.dns_names = {"www.example.com"};
    auto cert = signer->sign(spec);
    ASSERT_TRUE(cert) << cert.error().message;
    EXPECT_EQ(X509_verify(cert->get(), ca_.key.get()), 1);
    EXPECT_EQ(X509_check_issued(ca_.cert.get(), cert->get()), X509_V_OK);
    EXPECT_EQ(serial_to_hex(X509_get0_serialNumber(cert->get())), fmt::format("{:x}", 1000 + i));
  }
}

}  // namespace
}  // namespace ca::crypto
