// Base64 and PKCS#7 certs-only bundles (crypto/encoding): RFC 4648 test vectors, line wrapping,
// round trips of random bytes, every rejection of the decoder, and PKCS#7 bundles checked both
// ways against the openssl command line (`openssl pkcs7 -print_certs`, `openssl crl2pkcs7`).
#include "crypto/encoding.hpp"

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/pkcs7.h>

#include "crypto/extra_owners.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using ca::testing::write_file;
using fixtures::day_spec;
using fixtures::make_self_signed_ca;

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string text_of(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }

// ---- base64_encode -----------------------------------------------------------------------------

TEST(Base64Encode, Rfc4648TestVectors) {
  const struct {
    const char* plain;
    const char* encoded;
  } cases[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.plain);
    EXPECT_EQ(base64_encode(bytes_of(c.plain)), c.encoded);
  }
}

TEST(Base64Encode, TailsOfOneTwoAndThreeBytesUseEveryBit) {
  // All-ones bytes make every output character depend on the bits taken for it.
  const uint8_t ones[] = {0xff, 0xff, 0xff};
  EXPECT_EQ(base64_encode(std::span(ones, 1)), "/w==");
  EXPECT_EQ(base64_encode(std::span(ones, 2)), "//8=");
  EXPECT_EQ(base64_encode(std::span(ones, 3)), "////");
  const uint8_t mixed[] = {0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8b, 0x30, 0xd3, 0x8f,
                           0x41, 0x14, 0x93, 0x51, 0x55, 0x97, 0x61, 0x96, 0x9b, 0x71, 0xd7, 0x9f,
                           0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7, 0xa2, 0x9a, 0xab, 0xb2, 0xdb, 0xaf,
                           0xc3, 0x1c, 0xb3, 0xd3, 0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf};
  EXPECT_EQ(base64_encode(mixed), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

TEST(Base64Encode, LineLengthWrapsAfterEveryLineAndAtTheEnd) {
  std::vector<uint8_t> bytes(100);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + 11);
  const std::string flat = base64_encode(bytes);
  ASSERT_EQ(flat.size(), 136u);
  EXPECT_EQ(flat.find('\n'), std::string::npos);

  // 136 characters: one full line of 64, one of 64, then 8 and a final newline.
  EXPECT_EQ(base64_encode(bytes, 64),
            flat.substr(0, 64) + "\n" + flat.substr(64, 64) + "\n" + flat.substr(128) + "\n");
  EXPECT_EQ(base64_encode(bytes, 0), flat);

  // Exactly one line: a single newline, not an empty second line.
  std::vector<uint8_t> forty_eight(48, 0xa5);
  std::string one_line = base64_encode(forty_eight, 64);
  ASSERT_EQ(one_line.size(), 65u);
  EXPECT_EQ(one_line.back(), '\n');
  EXPECT_EQ(one_line.find('\n'), 64u);

  EXPECT_EQ(base64_encode(bytes_of("foobar"), 4), "Zm9v\nYmFy\n");
  EXPECT_EQ(base64_encode(bytes_of("f"), 3), "Zg=\n=\n");  // padding counts as characters
  EXPECT_EQ(base64_encode({}, 64), "");
}

// ---- base64_decode -----------------------------------------------------------------------------

TEST(Base64Decode, Rfc4648TestVectors) {
  const struct {
    const char* encoded;
    const char* plain;
  } cases[] = {
      {"Zg==", "f"},         {"Zm8=", "fo"},         {"Zm9v", "foo"},
      {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.encoded);
    auto decoded = base64_decode(c.encoded, "test input");
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(text_of(*decoded), c.plain);
  }
}

TEST(Base64Decode, RoundTripsRandomBytesOfManyLengths) {
  std::mt19937 random(20261130);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t length = 1; length <= 300; length += (length < 70 ? 1 : 23)) {
    std::vector<uint8_t> bytes(length);
    for (auto& b : bytes) b = static_cast<uint8_t>(byte(random));
    for (std::size_t line_length : {std::size_t{0}, std::size_t{64}, std::size_t{76}, std::size_t{5}}) {
      SCOPED_TRACE(::testing::Message() << "length " << length << ", line length " << line_length);
      auto decoded = base64_decode(base64_encode(bytes, line_length), "random bytes");
      ASSERT_TRUE(decoded) << decoded.error().message;
      EXPECT_EQ(*decoded, bytes);
    }
  }
}

TEST(Base64Decode, SkipsSpacesTabsAndLineBreaksAnywhere) {
  const char* inputs[] = {
      "Zm9vYmFy",
      "Zm9v\nYmFy\n",
      "Zm9v\r\nYmFy\r\n",
      "  Z m 9 v\tY m F y  ",
      "\n\nZm\n9vYm\n\nFy",
  };
  for (const char* input : inputs) {
    SCOPED_TRACE(input);
    auto decoded = base64_decode(input, "test input");
    ASSERT_TRUE(decoded) << decoded.error().message;
    EXPECT_EQ(text_of(*decoded), "foobar");
  }
  auto padded = base64_decode("Zm9vYg=\n=\n  ", "test input");  // whitespace inside and after padding
  ASSERT_TRUE(padded) << padded.error().message;
  EXPECT_EQ(text_of(*padded), "foob");
}

TEST(Base64Decode, RejectsWhatIsNotStandardPaddedBase64) {
  const struct {
    const char* name;
    std::string input;
    std::string message;
  } cases[] = {
      {"URL-safe minus", "Zm9-", "the CSR is not base64: unexpected character at offset 3"},
      {"URL-safe underscore", "_m9v", "the CSR is not base64: unexpected character at offset 0"},
      {"stray character", "Zm9v!mFy", "the CSR is not base64: unexpected character at offset 4"},
      {"NUL byte", std::string("Zm9v\0mFy", 8), "the CSR is not base64: unexpected character at offset 4"},
      {"non-ASCII byte", "Zm9v\xc3\xa9", "the CSR is not base64: unexpected character at offset 4"},
      {"missing padding", "Zg", "the CSR is not base64: its length is not a multiple of 4"},
      {"one character", "Zm9vY", "the CSR is not base64: its length is not a multiple of 4"},
      {"half padded", "Zg=", "the CSR is not base64: its length is not a multiple of 4"},
      {"data after padding", "Zg==Zm9v", "the CSR is not base64: unexpected character at offset 4"},
      {"data inside padding", "Zg=a", "the CSR is not base64: unexpected character at offset 3"},
      {"padding after padding", "Zg======", "the CSR is not base64: too much padding"},
      {"three padding characters", "Z===", "the CSR is not base64: too much padding"},
      {"only padding", "====", "the CSR is not base64: too much padding"},
      {"empty", "", "the CSR is empty"},
      {"only whitespace", " \r\n\t", "the CSR is empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto decoded = base64_decode(c.input, "the CSR");
    ASSERT_FALSE(decoded) << "accepted as " << text_of(*decoded);
    EXPECT_EQ(decoded.error().code, ErrorCode::bad_request);
    EXPECT_EQ(decoded.error().message, c.message);
  }
}

TEST(Base64Decode, MaxDecodedIsAnInclusiveLimit) {
  std::vector<uint8_t> bytes(300, 0x5a);
  const std::string text = base64_encode(bytes, 64);
  auto exact = base64_decode(text, "the body", bytes.size());
  ASSERT_TRUE(exact) << exact.error().message;
  EXPECT_EQ(*exact, bytes);

  for (std::size_t limit : {bytes.size() - 1, std::size_t{3}, std::size_t{0}}) {
    SCOPED_TRACE(limit);
    auto over = base64_decode(text, "the body", limit);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code, ErrorCode::bad_request);
    EXPECT_EQ(over.error().message, "the body is larger than " + std::to_string(limit) + " bytes");
  }
  // The padded last group counts only the bytes it decodes to.
  auto foob = base64_decode("Zm9vYg==", "the body", 4);
  ASSERT_TRUE(foob) << foob.error().message;
  EXPECT_EQ(text_of(*foob), "foob");
  EXPECT_FALSE(base64_decode("Zm9vYg==", "the body", 3));
}

// ---- PKCS#7 certs-only -------------------------------------------------------------------------

class Pkcs7Bundle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = make_self_signed_ca(KeyType::ec_p256, "CN=Bundle Test CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    auto key = generate_key(KeyType::ec_p256);
    ASSERT_TRUE(key) << key.error().message;
    auto subject = parse_name("CN=leaf.example,O=Example");
    ASSERT_TRUE(subject) << subject.error().message;
    CertificateSpec spec = day_spec(subject->get(), key->get(), "2a");
    spec.dns_names = {"leaf.example"};
    auto leaf = sign_certificate(spec, ca_.cert.get(), ca_.key.get());
    ASSERT_TRUE(leaf) << leaf.error().message;
    leaf_ = std::move(*leaf);
  }

  // `openssl pkcs7 -inform DER -print_certs` of the bundle: exit code and output.
  ca::testing::Shell print_certs(const std::vector<uint8_t>& der) {
    auto file = write_file(dir_ / "bundle.p7b", text_of(der));
    return shell("openssl pkcs7 -inform DER -print_certs -in " + file.string());
  }

  TempDir dir_{"ca-p7"};
  fixtures::Issued ca_;
  ossl::UniquePtr<X509> leaf_;
};

TEST_F(Pkcs7Bundle, OneCertificateRoundTripsAndOpensslReadsIt) {
  X509* certs[] = {ca_.cert.get()};
  auto der = certs_only_pkcs7(certs);
  ASSERT_TRUE(der) << der.error().message;

  auto back = certificates_of_pkcs7(*der);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ(X509_cmp(back->front().get(), ca_.cert.get()), 0);

  auto printed = print_certs(*der);
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("subject=O = Example, CN = Bundle Test CA"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find(certificate_to_pem(ca_.cert.get())), std::string::npos) << printed.output;
}

TEST_F(Pkcs7Bundle, TwoCertificatesKeepTheirOrderAndOpensslReadsBoth) {
  X509* certs[] = {leaf_.get(), ca_.cert.get()};
  auto der = certs_only_pkcs7(certs);
  ASSERT_TRUE(der) << der.error().message;

  auto back = certificates_of_pkcs7(*der);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(X509_cmp((*back)[0].get(), leaf_.get()), 0);
  EXPECT_EQ(X509_cmp((*back)[1].get(), ca_.cert.get()), 0);

  auto printed = print_certs(*der);
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  const auto leaf_at = printed.output.find(certificate_to_pem(leaf_.get()));
  const auto ca_at = printed.output.find(certificate_to_pem(ca_.cert.get()));
  ASSERT_NE(leaf_at, std::string::npos) << printed.output;
  ASSERT_NE(ca_at, std::string::npos) << printed.output;
  EXPECT_LT(leaf_at, ca_at);
  EXPECT_NE(printed.output.find("subject=O = Example, CN = leaf.example"), std::string::npos) << printed.output;
}

TEST_F(Pkcs7Bundle, ReadsWhatOpensslCrl2pkcs7Writes) {
  auto leaf_pem = write_file(dir_ / "leaf.pem", certificate_to_pem(leaf_.get()));
  auto ca_pem = write_file(dir_ / "ca.pem", certificate_to_pem(ca_.cert.get()));
  auto made = shell("openssl crl2pkcs7 -nocrl -certfile " + leaf_pem.string() + " -certfile " + ca_pem.string() +
                    " -outform DER -out " + (dir_ / "theirs.p7b").string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string theirs = ca::testing::read_file(dir_ / "theirs.p7b");
  ASSERT_FALSE(theirs.empty());

  auto back = certificates_of_pkcs7(bytes_of(theirs));
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(X509_cmp((*back)[0].get(), leaf_.get()), 0);
  EXPECT_EQ(X509_cmp((*back)[1].get(), ca_.cert.get()), 0);

  // Ours is byte for byte the degenerate certs-only form openssl writes (content absent).
  X509* certs[] = {leaf_.get(), ca_.cert.get()};
  auto ours = certs_only_pkcs7(certs);
  ASSERT_TRUE(ours) << ours.error().message;
  EXPECT_EQ(text_of(*ours), theirs);
}

TEST_F(Pkcs7Bundle, EmptyBundleHasNoCertificates) {
  auto der = certs_only_pkcs7({});
  ASSERT_TRUE(der) << der.error().message;
  auto back = certificates_of_pkcs7(*der);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(back->empty());
}

TEST_F(Pkcs7Bundle, RejectsGarbageTrailingBytesAndOtherContentTypes) {
  X509* certs[] = {leaf_.get(), ca_.cert.get()};
  auto der = certs_only_pkcs7(certs);
  ASSERT_TRUE(der) << der.error().message;
  std::vector<uint8_t> trailing = *der;
  trailing.push_back(0x00);
  std::vector<uint8_t> truncated(der->begin(), der->end() - 1);
  const std::vector<uint8_t> certificate = certificate_to_der(leaf_.get());

  // A PKCS#7 of type data: well-formed, but not a bundle of certificates.
  detail::Owned<PKCS7, PKCS7_free> data(PKCS7_new());
  ASSERT_TRUE(data);
  ASSERT_EQ(PKCS7_set_type(data.get(), NID_pkcs7_data), 1);
  unsigned char* raw = nullptr;
  int len = i2d_PKCS7(data.get(), &raw);
  ASSERT_GT(len, 0);
  std::vector<uint8_t> data_der(raw, raw + len);
  OPENSSL_free(raw);

  const struct {
    const char* name;
    std::vector<uint8_t> der;
    std::string message;  // a prefix of the error
  } cases[] = {
      {"empty", {}, "not a DER PKCS#7 bundle"},
      {"garbage", {'h', 'e', 'l', 'l', 'o'}, "not a DER PKCS#7 bundle"},
      {"trailing byte", trailing, "not a DER PKCS#7 bundle"},
      {"truncated", truncated, "not a DER PKCS#7 bundle"},
      {"a certificate", certificate, "not a DER PKCS#7 bundle"},
      {"data content", data_der, "the PKCS#7 bundle is not signedData"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto back = certificates_of_pkcs7(c.der);
    ASSERT_FALSE(back) << "accepted with " << back->size() << " certificates";
    EXPECT_EQ(back.error().code, ErrorCode::bad_request);
    EXPECT_TRUE(back.error().message.starts_with(c.message)) << back.error().message;
  }
}

}  // namespace
}  // namespace ca::crypto
