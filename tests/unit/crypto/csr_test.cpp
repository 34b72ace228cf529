#include "crypto/csr.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/bad_csr.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::read_file;
using ca::testing::shell;
using ca::testing::TempDir;
using fixtures::der_to_pem;
using fixtures::pem_body_to_der;

constexpr const char* kSignatureMessage =
    "CSR signature does not verify: the request was altered or signed with another key";
constexpr const char* kSanExtension =
    "-addext 'subjectAltName=DNS:host.example,DNS:www.example,IP:192.0.2.1,IP:2001:db8::1,email:ops@example.com'";

// CSRs made the way clients make them: with the openssl command line.
class CsrFromOpenssl : public ::testing::Test {
 protected:
  // Returns the PEM request, or "" after recording a failure.
  std::string openssl_req(const std::string& args) {
    auto out = shell("openssl req -new -nodes -subj '/O=Example/CN=host.example' -keyout " +
                     (dir_ / "key.pem").string() + " -out " + (dir_ / "req.pem").string() + " " + args);
    EXPECT_EQ(out.exit_code, 0) << out.output;
    return out.exit_code == 0 ? read_file(dir_ / "req.pem") : std::string();
  }
  std::string ec_csr(const std::string& extra = "") {
    return openssl_req("-newkey ec -pkeyopt ec_paramgen_curve:P-256 " + extra);
  }

  TempDir dir_{"ca-csr"};
};

struct KeyCase {
  const char* name;
  const char* args;
  const char* algorithm;
  int bits;
  const char* curve;
  const char* digest;
};

void PrintTo(const KeyCase& c, std::ostream* os) { *os << c.name; }

class CsrKeyTypes : public CsrFromOpenssl, public ::testing::WithParamInterface<KeyCase> {};

TEST_P(CsrKeyTypes, ParsesKeyInfoSubjectAndSans) {
  const KeyCase& c = GetParam();
  std::string pem = openssl_req(std::string(c.args) + " " + kSanExtension);
  ASSERT_FALSE(pem.empty());

  auto csr = parse_csr_pem(pem);
  ASSERT_TRUE(csr) << csr.error().message;
  ASSERT_TRUE(csr->public_key);
  ASSERT_TRUE(csr->subject);
  EXPECT_EQ(csr->key.algorithm, c.algorithm);
  EXPECT_EQ(csr->key.bits, c.bits);
  EXPECT_EQ(csr->key.curve, c.curve);
  EXPECT_EQ(csr->signature_digest, c.digest);
  EXPECT_EQ(csr->subject_text, "CN=host.example,O=Example");
  EXPECT_EQ(csr->dns_names, (std::vector<std::string>{"host.example", "www.example"}));
  EXPECT_EQ(csr->ip_addresses, (std::vector<std::string>{"192.0.2.1", "2001:db8::1"}));
  EXPECT_EQ(csr->emails, (std::vector<std::string>{"ops@example.com"}));
  std::string der = pem_body_to_der(pem);
  EXPECT_EQ(std::string(csr->der.begin(), csr->der.end()), der);
}

INSTANTIATE_TEST_SUITE_P(
    OpensslReq, CsrKeyTypes,
    ::testing::Values(KeyCase{"rsa2048", "-newkey rsa:2048", "RSA", 2048, "", "SHA256"},
                      KeyCase{"rsa2048_pss", "-newkey rsa:2048 -sha384 -sigopt rsa_padding_mode:pss", "RSA", 2048,
                              "", "SHA384"},
                      KeyCase{"ecP256", "-newkey ec -pkeyopt ec_paramgen_curve:P-256", "EC", 256, "P-256", "SHA256"},
                      KeyCase{"ecP384", "-newkey ec -pkeyopt ec_paramgen_curve:P-384 -sha384", "EC", 384, "P-384",
                              "SHA384"},
                      KeyCase{"ecP521", "-newkey ec -pkeyopt ec_paramgen_curve:P-521 -sha512", "EC", 521, "P-521",
                              "SHA512"},
                      KeyCase{"ed25519", "-newkey ed25519", "Ed25519", 256, "", ""}),
    [](const ::testing::TestParamInfo<KeyCase>& info) { return std::string(info.param.name); });

TEST_F(CsrFromOpenssl, WithoutSansListsAreEmpty) {
  std::string pem = ec_csr();
  ASSERT_FALSE(pem.empty());
  auto csr = parse_csr_pem(pem);
  ASSERT_TRUE(csr) << csr.error().message;
  EXPECT_TRUE(csr->dns_names.empty());
  EXPECT_TRUE(csr->ip_addresses.empty());
  EXPECT_TRUE(csr->emails.empty());
}

TEST_F(CsrFromOpenssl, AcceptsNewCertificateRequestLabelAndLeadingText) {
  std::string pem = ec_csr();
  ASSERT_FALSE(pem.empty());
  std::string der = pem_body_to_der(pem);
  ASSERT_FALSE(der.empty());
  const std::string variants[] = {
      der_to_pem("NEW CERTIFICATE REQUEST", der),
      "Certificate Request:\n    made by openssl req -text\n" + pem,  // RFC 7468 explanatory text
      "\n" + pem + "\n\n",
  };
  for (const auto& text : variants) {
    SCOPED_TRACE(text.substr(0, 40));
    auto csr = parse_csr_pem(text);
    EXPECT_TRUE(csr) << csr.error().message;
  }
}

TEST_F(CsrFromOpenssl, TamperedSignatureIsRejected) {
  std::string pem = ec_csr();
  ASSERT_FALSE(pem.empty());
  std::string der = pem_body_to_der(pem);
  ASSERT_FALSE(der.empty());
  der.back() ^= 0x01;  // the last byte belongs to the signature
  auto csr = parse_csr_pem(der_to_pem("CERTIFICATE REQUEST", der));
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
  EXPECT_EQ(csr.error().message, kSignatureMessage);
}

TEST_F(CsrFromOpenssl, AlteredContentIsRejected) {
  std::string pem = ec_csr("-addext subjectAltName=DNS:aaaa.example");
  ASSERT_FALSE(pem.empty());
  std::string der = pem_body_to_der(pem);
  auto at = der.find("aaaa.example");
  ASSERT_NE(at, std::string::npos);
  der[at] = 'b';  // a name the key holder never asked for
  auto csr = parse_csr_pem(der_to_pem("CERTIFICATE REQUEST", der));
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().message, kSignatureMessage);
}

TEST_F(CsrFromOpenssl, WeakDigestsAreRejected) {
  const struct {
    const char* args;
    const char* message;
  } cases[] = {
      {"-newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha1",
       "CSR is signed with SHA-1, which is not accepted; sign it with SHA-256 or stronger"},
      {"-newkey rsa:2048 -sha1", "CSR is signed with SHA-1, which is not accepted; sign it with SHA-256 or stronger"},
      {"-newkey rsa:2048 -md5", "CSR is signed with MD5, which is not accepted; sign it with SHA-256 or stronger"},
      {"-newkey rsa:2048 -sha1 -sigopt rsa_padding_mode:pss",
       "CSR is signed with SHA-1, which is not accepted; sign it with SHA-256 or stronger"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    std::string pem = openssl_req(c.args);
    ASSERT_FALSE(pem.empty());
    auto csr = parse_csr_pem(pem);
    ASSERT_FALSE(csr);
    EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
    EXPECT_EQ(csr.error().message, c.message);
  }
}

TEST_F(CsrFromOpenssl, UnsupportedKeyTypeIsRejected) {
  auto params = shell("openssl dsaparam -out " + (dir_ / "dsa.pem").string() + " 1024");
  ASSERT_EQ(params.exit_code, 0) << params.output;
  std::string pem = openssl_req("-newkey dsa:" + (dir_ / "dsa.pem").string());
  ASSERT_FALSE(pem.empty());
  auto csr = parse_csr_pem(pem);
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
  EXPECT_EQ(csr.error().message, "CSR key type DSA is not supported; use RSA, RSA-PSS, EC, Ed25519 or Ed448");
}

TEST_F(CsrFromOpenssl, UnsupportedSubjectAltNameIsRejected) {
  std::string pem = ec_csr("-addext subjectAltName=DNS:a.example,URI:https://a.example/");
  ASSERT_FALSE(pem.empty());
  auto csr = parse_csr_pem(pem);
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().message,
            "CSR subjectAltName contains a URI name; only DNS names, IP addresses and email addresses are accepted");
}

TEST_F(CsrFromOpenssl, MalformedInputGetsAPreciseMessage) {
  std::string pem = ec_csr();
  ASSERT_FALSE(pem.empty());
  std::string der = pem_body_to_der(pem);
  const struct {
    const char* name;
    std::string input;
    std::string message;  // a prefix of the error
  } cases[] = {
      {"empty", "", "CSR is empty"},
      {"blank", " \n\t\n", "CSR is empty"},
      {"oversize", std::string(40000, 'A'), "CSR is 40000 bytes; the limit is 32768 bytes"},
      {"not pem", "hello world", "CSR is not PEM: no '-----BEGIN CERTIFICATE REQUEST-----' line"},
      {"raw der", der, "CSR is not PEM"},
      {"certificate label", der_to_pem("CERTIFICATE", der),
       "expected a PEM 'CERTIFICATE REQUEST' block, found 'CERTIFICATE'"},
      {"bad base64", "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n",
       "CSR PEM block is damaged: "},
      {"not pkcs10", der_to_pem("CERTIFICATE REQUEST", "\x30\x03\x02\x01\x01"),
       "CSR is not a PKCS#10 certificate request: "},
      {"trailing der", der_to_pem("CERTIFICATE REQUEST", der + std::string("\x05\x00", 2)),
       "CSR has 2 unexpected bytes after the PKCS#10 request"},
      {"trailing text", pem + "garbage\n",
       "CSR has unexpected data after the '-----END CERTIFICATE REQUEST-----' line"},
      {"two requests", pem + pem, "CSR has unexpected data after the '-----END CERTIFICATE REQUEST-----' line"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto csr = parse_csr_pem(c.input);
    ASSERT_FALSE(csr);
    EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
    EXPECT_TRUE(csr.error().message.starts_with(c.message)) << csr.error().message;
  }
}

// The signatureAlgorithm lies outside the signed CertificationRequestInfo, so a relabelled request
// keeps a signature that is valid for its key: only the label is wrong.
TEST_F(CsrFromOpenssl, SignatureAlgorithmMustMatchTheKeyType) {
  using ca::testing::replace_signature_algorithm;
  // P-256 takes the fast path; secp256k1 (which the fast path does not know) the general one.
  std::string p256 = ec_csr();
  std::string k256 = openssl_req("-newkey ec -pkeyopt ec_paramgen_curve:secp256k1");
  std::string rsa = openssl_req("-newkey rsa:2048");
  std::string ed25519 = openssl_req("-newkey ed25519");
  std::string rsa_pss = openssl_req("-newkey rsa-pss -pkeyopt rsa_keygen_bits:2048");
  ASSERT_FALSE(p256.empty() || k256.empty() || rsa.empty() || ed25519.empty() || rsa_pss.empty());

  const std::string ec_message =
      "CSR signature algorithm sha256WithRSAEncryption does not match its EC key; EC keys sign with "
      "ecdsa-with-SHA256, ecdsa-with-SHA384, ecdsa-with-SHA512 or ecdsa-with-SHA224";
  const std::string rsa_integer_parameter("\x30\x0e\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x02\x01\x00", 16);
  const struct {
    const char* name;
    std::string pem;
    std::string message;
  } cases[] = {
      {"fast path: ECDSA labelled RSA", ca::testing::csr_ecdsa_signed_labelled_rsa("host.example"), ec_message},
      {"fast path: ECDSA labelled RSA (openssl req)",
       replace_signature_algorithm(p256, ca::testing::kSha256WithRsaNull), ec_message},
      {"general path: ECDSA labelled RSA", replace_signature_algorithm(k256, ca::testing::kSha256WithRsaNull),
       ec_message},
      {"RSA labelled ECDSA", ca::testing::csr_rsa_signed_labelled_ecdsa("host.example"),
       "CSR signature algorithm ecdsa-with-SHA256 does not match its RSA key; RSA keys sign with "
       "sha256WithRSAEncryption, sha384WithRSAEncryption, sha512WithRSAEncryption, sha224WithRSAEncryption or "
       "RSASSA-PSS"},
      {"Ed25519 labelled ECDSA", replace_signature_algorithm(ed25519, ca::testing::kEcdsaWithSha256),
       "CSR signature algorithm ecdsa-with-SHA256 does not match its Ed25519 key; Ed25519 keys sign with Ed25519"},
      {"RSA-PSS key labelled PKCS#1 v1.5", replace_signature_algorithm(rsa_pss, ca::testing::kSha256WithRsaNull),
       "CSR signature algorithm sha256WithRSAEncryption does not match its RSA-PSS key; RSA-PSS keys sign with "
       "RSASSA-PSS"},
      {"fast path: ECDSA with NULL parameters", replace_signature_algorithm(p256, ca::testing::kEcdsaWithSha256Null),
       "CSR signature algorithm ecdsa-with-SHA256 must have absent parameters (RFC 5758)"},
      {"general path: ECDSA with NULL parameters",
       replace_signature_algorithm(k256, ca::testing::kEcdsaWithSha256Null),
       "CSR signature algorithm ecdsa-with-SHA256 must have absent parameters (RFC 5758)"},
      {"Ed25519 with NULL parameters", replace_signature_algorithm(ed25519, ca::testing::kEd25519Null),
       "CSR signature algorithm Ed25519 must have absent parameters (RFC 8410)"},
      {"RSA with an INTEGER parameter", replace_signature_algorithm(rsa, rsa_integer_parameter),
       "CSR signature algorithm sha256WithRSAEncryption must have NULL or absent parameters (RFC 4055)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto csr = parse_csr_pem(c.pem);
    ASSERT_FALSE(csr) << "accepted";
    EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
    EXPECT_EQ(csr.error().message, c.message);
  }

  // The labels that do belong to their keys, parameters included, still verify.
  auto absent = parse_csr_pem(replace_signature_algorithm(rsa, ca::testing::kSha256WithRsaAbsent));
  ASSERT_TRUE(absent) << absent.error().message;  // RFC 4055 allows NULL or absent
  EXPECT_EQ(absent->signature_digest, "SHA256");
  auto pss = parse_csr_pem(rsa_pss);
  ASSERT_TRUE(pss) << pss.error().message;
  EXPECT_EQ(pss->key.algorithm, "RSA-PSS");
  EXPECT_EQ(pss->key.bits, 2048);
  EXPECT_EQ(pss->signature_digest, "SHA256");
  auto k1 = parse_csr_pem(k256);
  ASSERT_TRUE(k1) << k1.error().message;
  EXPECT_EQ(k1->key.curve, "secp256k1");
}

TEST_F(CsrFromOpenssl, ExplicitCurveParametersAreRefused) {
  // What `openssl ecparam -param_enc explicit` gives: parameters OpenSSL itself still names
  // prime256v1, written out as a SEQUENCE in the SubjectPublicKeyInfo.
  auto key = shell("openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out " +
                   (dir_ / "explicit.pem").string());
  ASSERT_EQ(key.exit_code, 0) << key.output;
  auto req = shell("openssl req -new -subj /CN=host.example -key " + (dir_ / "explicit.pem").string() + " -out " +
                   (dir_ / "req.pem").string());
  ASSERT_EQ(req.exit_code, 0) << req.output;
  const std::string made_here = ca::testing::csr_ec_explicit_parameters("host.example");
  for (const std::string& pem : {read_file(dir_ / "req.pem"), made_here}) {
    auto csr = parse_csr_pem(pem);
    ASSERT_FALSE(csr) << "accepted";
    EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
    EXPECT_EQ(csr.error().message, "EC keys must use a named curve; explicit curve parameters are refused");
  }
}

TEST_F(CsrFromOpenssl, SizeLimitIsTheCallers) {
  std::string pem = ec_csr();
  ASSERT_FALSE(pem.empty());
  EXPECT_TRUE(parse_csr_pem(pem, pem.size()));
  auto csr = parse_csr_pem(pem, pem.size() - 1);
  ASSERT_FALSE(csr);
  EXPECT_EQ(csr.error().message, fmt::format("CSR is {} bytes; the limit is {} bytes", pem.size(), pem.size() - 1));
}

// ---- parse_csr_der: the DER form EST clients send ------------------------------------------------

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST_F(CsrFromOpenssl, DerRequestParsesLikeItsPem) {
  // EC P-256 takes the fast path, RSA the general one.
  for (const char* args : {"-newkey ec -pkeyopt ec_paramgen_curve:P-256", "-newkey rsa:2048"}) {
    SCOPED_TRACE(args);
    std::string pem = openssl_req(std::string(args) + " " + kSanExtension);
    ASSERT_FALSE(pem.empty());
    const std::string der = pem_body_to_der(pem);
    ASSERT_FALSE(der.empty());

    auto from_pem = parse_csr_pem(pem);
    ASSERT_TRUE(from_pem) << from_pem.error().message;
    auto from_der = parse_csr_der(bytes_of(der));
    ASSERT_TRUE(from_der) << from_der.error().message;
    EXPECT_EQ(from_der->subject_text, "CN=host.example,O=Example");
    EXPECT_EQ(from_der->subject_text, from_pem->subject_text);
    ASSERT_TRUE(from_der->subject);
    EXPECT_EQ(X509_NAME_cmp(from_der->subject.get(), from_pem->subject.get()), 0);
    EXPECT_EQ(from_der->dns_names, (std::vector<std::string>{"host.example", "www.example"}));
    EXPECT_EQ(from_der->ip_addresses, (std::vector<std::string>{"192.0.2.1", "2001:db8::1"}));
    EXPECT_EQ(from_der->emails, (std::vector<std::string>{"ops@example.com"}));
    EXPECT_EQ(from_der->key.algorithm, from_pem->key.algorithm);
    EXPECT_EQ(from_der->key.bits, from_pem->key.bits);
    EXPECT_EQ(from_der->signature_digest, "SHA256");
    ASSERT_TRUE(from_der->public_key);
    EXPECT_EQ(EVP_PKEY_eq(from_der->public_key.get(), from_pem->public_key.get()), 1);
    EXPECT_EQ(std::string(from_der->der.begin(), from_der->der.end()), der);
    EXPECT_EQ(from_der->der, from_pem->der);
  }
}

TEST_F(CsrFromOpenssl, DerRequestMustBeTheWholeBufferAndWithinTheLimit) {
  for (const char* args : {"-newkey ec -pkeyopt ec_paramgen_curve:P-256", "-newkey rsa:2048"}) {
    SCOPED_TRACE(args);
    std::string pem = openssl_req(args);
    ASSERT_FALSE(pem.empty());
    const std::string der = pem_body_to_der(pem);
    ASSERT_FALSE(der.empty());

    auto trailing = parse_csr_der(bytes_of(der + std::string(1, '\0')));
    ASSERT_FALSE(trailing) << "accepted";
    EXPECT_EQ(trailing.error().code, ErrorCode::bad_request);
    EXPECT_EQ(trailing.error().message, "CSR has 1 unexpected bytes after the PKCS#10 request");

    auto truncated = parse_csr_der(bytes_of(der.substr(0, der.size() - 1)));
    ASSERT_FALSE(truncated) << "accepted";
    EXPECT_EQ(truncated.error().code, ErrorCode::bad_request);
    EXPECT_TRUE(truncated.error().message.starts_with("CSR is not a PKCS#10 certificate request: "))
        << truncated.error().message;

    EXPECT_TRUE(parse_csr_der(bytes_of(der), der.size()));
    auto over = parse_csr_der(bytes_of(der), der.size() - 1);
    ASSERT_FALSE(over) << "accepted";
    EXPECT_EQ(over.error().code, ErrorCode::bad_request);
    EXPECT_EQ(over.error().message,
              fmt::format("CSR is {} bytes; the limit is {} bytes", der.size(), der.size() - 1));
  }

  auto empty = parse_csr_der({});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::bad_request);
  EXPECT_EQ(empty.error().message, "CSR is empty");

  const std::string big(40000, '\x30');
  auto oversized = parse_csr_der(bytes_of(big));
  ASSERT_FALSE(oversized);
  EXPECT_EQ(oversized.error().code, ErrorCode::bad_request);
  EXPECT_EQ(oversized.error().message, "CSR is 40000 bytes; the limit is 32768 bytes");
}

TEST(CsrDer, CertificateIsNotARequest) {
  auto ca = fixtures::make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;
  auto csr = parse_csr_der(certificate_to_der(ca->cert.get()));
  ASSERT_FALSE(csr) << "accepted";
  EXPECT_EQ(csr.error().code, ErrorCode::bad_request);
  EXPECT_TRUE(csr.error().message.starts_with("CSR is not a PKCS#10 certificate request: ")) << csr.error().message;
}

// ---- request_from_certificate: renewal by serial -----------------------------------------------

TEST(RequestFromCertificate, TakesKeySubjectAndNamesOfTheCertificate) {
  auto ca = fixtures::make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;
  const struct {
    KeyType type;
    const char* algorithm;
    int bits;
    const char* curve;
  } cases[] = {
      {KeyType::ec_p256, "EC", 256, "P-256"},
      {KeyType::ec_p384, "EC", 384, "P-384"},
      {KeyType::rsa_2048, "RSA", 2048, ""},
      {KeyType::ed25519, "Ed25519", 256, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(key_type_name(c.type));
    auto key = generate_key(c.type);
    ASSERT_TRUE(key) << key.error().message;
    auto subject = parse_name("CN=renew.example,OU=Ops,O=Example");
    ASSERT_TRUE(subject) << subject.error().message;
    CertificateSpec spec = fixtures::day_spec(subject->get(), key->get(), "7b");
    spec.dns_names = {"renew.example", "www.renew.example"};
    spec.ip_addresses = {"192.0.2.7", "2001:db8::7"};
    spec.emails = {"ops@renew.example"};
    auto cert = sign_certificate(spec, ca->cert.get(), ca->key.get());
    ASSERT_TRUE(cert) << cert.error().message;

    auto request = request_from_certificate(cert->get());
    ASSERT_TRUE(request) << request.error().message;
    EXPECT_EQ(request->subject_text, "CN=renew.example,OU=Ops,O=Example");
    ASSERT_TRUE(request->subject);
    EXPECT_EQ(X509_NAME_cmp(request->subject.get(), X509_get_subject_name(cert->get())), 0);
    EXPECT_EQ(request->dns_names, (std::vector<std::string>{"renew.example", "www.renew.example"}));
    EXPECT_EQ(request->ip_addresses, (std::vector<std::string>{"192.0.2.7", "2001:db8::7"}));
    EXPECT_EQ(request->emails, (std::vector<std::string>{"ops@renew.example"}));
    ASSERT_TRUE(request->public_key);
    EXPECT_EQ(EVP_PKEY_eq(request->public_key.get(), X509_get0_pubkey(cert->get())), 1);
    EXPECT_EQ(EVP_PKEY_eq(request->public_key.get(), key->get()), 1);
    EXPECT_NE(EVP_PKEY_eq(request->public_key.get(), ca->key.get()), 1);  // not the issuer's
    EXPECT_EQ(request->key.algorithm, c.algorithm);
    EXPECT_EQ(request->key.bits, c.bits);
    EXPECT_EQ(request->key.curve, c.curve);
    EXPECT_EQ(request->der, certificate_to_der(cert->get()));
  }
}

TEST(RequestFromCertificate, WithoutSubjectAltNamesListsAreEmpty) {
  auto ca = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Renewal CA,O=Example");
  ASSERT_TRUE(ca) << ca.error().message;
  auto request = request_from_certificate(ca->cert.get());
  ASSERT_TRUE(request) << request.error().message;
  EXPECT_EQ(request->subject_text, "CN=Renewal CA,O=Example");
  EXPECT_TRUE(request->dns_names.empty());
  EXPECT_TRUE(request->ip_addresses.empty());
  EXPECT_TRUE(request->emails.empty());
  EXPECT_EQ(EVP_PKEY_eq(request->public_key.get(), ca->key.get()), 1);
  EXPECT_EQ(request->der, certificate_to_der(ca->cert.get()));
}

}  // namespace
}  // namespace ca::crypto

namespace ca::crypto {
namespace {

// The exponent is refused before the signature is looked at: the signature here does not verify,
// and the refusal names the exponent, not the signature.
TEST(CsrCheapChecksFirst, AHugeRsaExponentIsRefusedWithoutASignatureCheck) {
  const auto pem = ca::testing::csr_rsa_huge_exponent_bad_signature("huge-exponent.example.com");
  const auto start = std::chrono::steady_clock::now();
  auto parsed = parse_csr_pem(pem);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("exponent"), std::string::npos) << parsed.error().message;
  EXPECT_EQ(parsed.error().message.find("signature"), std::string::npos) << parsed.error().message;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), 50);
}

}  // namespace
}  // namespace ca::crypto
