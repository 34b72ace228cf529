#include "crypto/pem.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

using ca::testing::TempDir;
using ca::testing::read_file;
using ca::testing::shell;
using ca::testing::write_file;
using fixtures::make_self_signed_ca;

mode_t file_mode(const std::filesystem::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Restores the process umask when the test step is over.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

std::size_t count_files(const std::filesystem::path& dir) {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
}

TEST(CertificateEncoding, PemAndDerRoundTrip) {
  auto ca = make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;

  std::string pem = certificate_to_pem(ca->cert.get());
  EXPECT_TRUE(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
  auto from_pem = parse_certificate_pem(pem);
  ASSERT_TRUE(from_pem) << from_pem.error().message;
  EXPECT_EQ(X509_cmp(from_pem->get(), ca->cert.get()), 0);

  std::vector<uint8_t> der = certificate_to_der(ca->cert.get());
  ASSERT_FALSE(der.empty());
  auto from_der = parse_certificate_der(der);
  ASSERT_TRUE(from_der) << from_der.error().message;
  EXPECT_EQ(X509_cmp(from_der->get(), ca->cert.get()), 0);
  EXPECT_EQ(certificate_to_der(from_pem->get()), der);
}

TEST(CertificateEncoding, RejectsWhatIsNotACertificate) {
  const struct {
    const char* name;
    std::string pem;
  } cases[] = {
      {"empty", ""},
      {"text", "hello"},
      {"bad body", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
      {"other label", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto cert = parse_certificate_pem(c.pem);
    ASSERT_FALSE(cert);
    EXPECT_EQ(cert.error().code, ErrorCode::bad_request);
    EXPECT_TRUE(cert.error().message.starts_with("not a PEM certificate: ")) << cert.error().message;
  }
}

TEST(CertificateEncoding, DerWithTrailingBytesIsRejected) {
  auto ca = make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;
  std::vector<uint8_t> der = certificate_to_der(ca->cert.get());
  der.push_back(0);
  auto cert = parse_certificate_der(der);
  ASSERT_FALSE(cert);
  EXPECT_EQ(cert.error().message, "certificate is followed by 1 unexpected bytes");

  auto truncated = parse_certificate_der(std::span<const uint8_t>(der).first(10));
  ASSERT_FALSE(truncated);
  EXPECT_TRUE(truncated.error().message.starts_with("not a DER certificate: ")) << truncated.error().message;
}

TEST(PrivateKeyEncoding, EncryptedKeyIsRefusedWithoutPrompting) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  ASSERT_TRUE(bio);
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), key->get(), EVP_aes_256_cbc(), pass, 6, nullptr, nullptr), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  auto parsed = parse_private_key_pem(std::string_view(data, static_cast<std::size_t>(len)));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().message, "private key is encrypted; an unencrypted PKCS#8 key is required");
}

TEST(PrivateKeyEncoding, GarbageIsRejected) {
  auto parsed = parse_private_key_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ErrorCode::bad_request);
  EXPECT_TRUE(parsed.error().message.starts_with("not a PEM private key: ")) << parsed.error().message;
}

TEST(KeyFiles, PrivateKeyFileIsCreated0600AndReplacesTheOldFile) {
  TempDir dir("ca-crypto");
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  auto path = write_file(dir / "ca.key", "old content");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);

  {
    ScopedUmask open_umask(0);  // the mode must not depend on the umask
    auto written = write_private_key_file(path, key->get());
    ASSERT_TRUE(written) << written.error().message;
  }
  EXPECT_EQ(file_mode(path), 0600u);
  EXPECT_EQ(count_files(dir.path()), 1u) << "temporary file left behind";
  EXPECT_TRUE(read_file(path).starts_with("-----BEGIN PRIVATE KEY-----\n"));
  auto loaded = load_private_key_file(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(EVP_PKEY_eq(loaded->get(), key->get()), 1);
}

TEST(KeyFiles, CertificateFileIs0644WhateverTheUmask) {
  TempDir dir("ca-crypto");
  auto ca = make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;
  auto path = dir / "ca.pem";
  {
    ScopedUmask strict_umask(077);
    auto written = write_certificate_file(path, ca->cert.get());
    ASSERT_TRUE(written) << written.error().message;
  }
  EXPECT_EQ(file_mode(path), 0644u);
  auto loaded = load_certificate_file(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(X509_cmp(loaded->get(), ca->cert.get()), 0);
}

TEST(KeyFiles, TextFileAtomicWriteAndErrors) {
  TempDir dir("ca-crypto");
  auto path = dir / "password.txt";
  auto written = write_text_file_atomic(path, "s3cret\n", 0640);
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(read_file(path), "s3cret\n");
  EXPECT_EQ(file_mode(path), 0640u);

  auto missing_dir = write_text_file_atomic(dir / "no-such-dir" / "x", "x", 0600);
  ASSERT_FALSE(missing_dir);
  EXPECT_EQ(missing_dir.error().code, ErrorCode::io);
  EXPECT_NE(missing_dir.error().message.find("no-such-dir"), std::string::npos) << missing_dir.error().message;
  EXPECT_NE(missing_dir.error().message.find("No such file or directory"), std::string::npos);
}

TEST(KeyFiles, LoadErrorsNameTheFile) {
  TempDir dir("ca-crypto");
  auto missing = load_certificate_file(dir / "missing.pem");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::io);
  EXPECT_NE(missing.error().message.find("missing.pem': No such file or directory"), std::string::npos)
      << missing.error().message;

  auto junk = write_file(dir / "junk.pem", "not a certificate");
  auto not_cert = load_certificate_file(junk);
  ASSERT_FALSE(not_cert);
  EXPECT_EQ(not_cert.error().code, ErrorCode::config);
  EXPECT_NE(not_cert.error().message.find("junk.pem' does not hold a certificate"), std::string::npos);
  auto not_key = load_private_key_file(junk);
  ASSERT_FALSE(not_key);
  EXPECT_NE(not_key.error().message.find("junk.pem' does not hold a private key"), std::string::npos);
}

TEST(Fingerprints, MatchTheOpensslCommandLine) {
  TempDir dir("ca-crypto");
  auto ca = make_self_signed_ca(KeyType::ec_p256);
  ASSERT_TRUE(ca) << ca.error().message;
  ASSERT_TRUE(write_certificate_file(dir / "ca.pem", ca->cert.get()));
  const struct {
    const char* flag;
    std::string ours;
  } cases[] = {{"-sha1", sha1_fingerprint_hex(ca->cert.get())}, {"-sha256", sha256_fingerprint_hex(ca->cert.get())}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.flag);
    auto out = shell("openssl x509 -noout -fingerprint " + std::string(c.flag) + " -in " + (dir / "ca.pem").string());
    ASSERT_EQ(out.exit_code, 0) << out.output;
    // "sha256 Fingerprint=AB:CD:..."
    std::string theirs = out.output.substr(out.output.find('=') + 1);
    std::erase_if(theirs, [](char ch) { return ch == ':' || ch == '\n'; });
    std::ranges::transform(theirs, theirs.begin(), [](unsigned char ch) { return std::tolower(ch); });
    EXPECT_EQ(c.ours, theirs);
  }
}

TEST(Names, Rfc4514RoundTrip) {
  const struct {
    const char* input;
    const char* printed;
  } cases[] = {
      {"CN=Demo CA,O=Example", "CN=Demo CA,O=Example"},
      {"CN=Smith\\, John,O=Example", "CN=Smith\\, John,O=Example"},
      {"cn=lower , o = Spaced", "CN=lower,O=Spaced"},
      {"CN=Jos\\C3\\A9,O=Example", "CN=Jos\xC3\xA9,O=Example"},
      {"CN=Jos\xC3\xA9,O=Example", "CN=Jos\xC3\xA9,O=Example"},
      {"CN=\\#hash,O=x", "CN=\\#hash,O=x"},
      {"CN=\\ padded\\ ,O=x", "CN=\\ padded\\ ,O=x"},
      {"CN=a\\+b\\;c\\<d\\>\\\"e\\\\f=g,O=x", "CN=a\\+b\\;c\\<d\\>\\\"e\\\\f=g,O=x"},
      {"2.5.4.3=By OID", "CN=By OID"},
      {"CN=host+UID=u1,DC=example,DC=com", "CN=host+UID=u1,DC=example,DC=com"},
      {"emailAddress=ops@example.com,CN=Ops,STREET=1 Main St,C=DE",
       "emailAddress=ops@example.com,CN=Ops,street=1 Main St,C=DE"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto name = parse_name(c.input);
    ASSERT_TRUE(name) << name.error().message;
    EXPECT_EQ(name_to_string(name->get()), c.printed);
    auto again = parse_name(c.printed);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(X509_NAME_cmp(again->get(), name->get()), 0);
  }
}

TEST(Names, MostSpecificRdnIsEncodedLast) {
  auto name = parse_name("CN=Demo CA,O=Example");
  ASSERT_TRUE(name) << name.error().message;
  ASSERT_EQ(X509_NAME_entry_count(name->get()), 2);
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name->get(), 0))), NID_organizationName);
  EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name->get(), 1))), NID_commonName);

  auto multi = parse_name("CN=host+UID=u1,O=Example");
  ASSERT_TRUE(multi) << multi.error().message;
  ASSERT_EQ(X509_NAME_entry_count(multi->get()), 3);
  auto rdn = [&](int i) { return X509_NAME_ENTRY_set(X509_NAME_get_entry(multi->get(), i)); };
  EXPECT_NE(rdn(0), rdn(1));
  EXPECT_EQ(rdn(1), rdn(2)) << "CN and UID share one RDN";
}

TEST(Names, ParseRejectsMalformedNames) {
  const struct {
    const char* input;
    const char* message_part;
  } cases[] = {
      {"", "distinguished name is empty"},
      {"FOO=bar", "unknown attribute type 'FOO'"},
      {"sha256=abc", "unknown attribute type 'sha256'"},
      {"CN=", "empty value for CN"},
      {"CN=  ,O=x", "empty value for CN"},
      {"CN=a,,O=b", "expected type=value at ''"},
      {"CN", "expected type=value at 'CN'"},
      {"CN=a,", "ends with a separator"},
      {"CN=a\\", "dangling '\\' in CN"},
      {"CN=a\\x", "invalid escape '\\x' in CN"},
      {"CN=a;b", "';' in CN must be escaped"},
      {"CN=#0403", "hex-encoded (#...) values are not supported"},
      {"C=USA", "invalid value for C"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto name = parse_name(c.input);
    ASSERT_FALSE(name);
    EXPECT_EQ(name.error().code, ErrorCode::bad_request);
    EXPECT_NE(name.error().message.find(c.message_part), std::string::npos) << name.error().message;
  }
}

TEST(Serials, HexRoundTrip) {
  const std::string max_serial = "7" + std::string(39, 'f');
  const struct {
    std::string input;
    std::string canonical;
    std::vector<uint8_t> der;  // DER INTEGER: sign byte added when the top bit is set
  } cases[] = {
      {"1", "1", {0x02, 0x01, 0x01}},
      {"0a", "a", {0x02, 0x01, 0x0a}},
      {"80", "80", {0x02, 0x02, 0x00, 0x80}},
      {"00ff", "ff", {0x02, 0x02, 0x00, 0xff}},
      {"DEADbeef", "deadbeef", {0x02, 0x05, 0x00, 0xde, 0xad, 0xbe, 0xef}},
      {"123", "123", {0x02, 0x02, 0x01, 0x23}},
      {max_serial, max_serial, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto serial = serial_from_hex(c.input);
    ASSERT_TRUE(serial) << serial.error().message;
    EXPECT_EQ(serial_to_hex(serial->get()), c.canonical);
    unsigned char* der = nullptr;
    int len = i2d_ASN1_INTEGER(serial->get(), &der);
    ASSERT_GT(len, 0);
    if (!c.der.empty()) {
      EXPECT_EQ(std::vector<uint8_t>(der, der + len), c.der);
    } else {
      EXPECT_EQ(len, 22);  // the largest serial: tag, length, 20 octets
    }
    OPENSSL_free(der);
  }

  ossl::UniquePtr<ASN1_INTEGER> zero(ASN1_INTEGER_new());
  ASSERT_TRUE(zero);
  ASSERT_EQ(ASN1_INTEGER_set(zero.get(), 0), 1);
  EXPECT_EQ(serial_to_hex(zero.get()), "0");
}

TEST(Serials, RejectsInvalidHex) {
  const struct {
    std::string input;
    const char* message;
  } cases[] = {
      {"", "serial number is empty"},
      {"xyz", "serial number 'xyz' is not hexadecimal"},
      {"-1", "serial number '-1' is not hexadecimal"},
      {"0x10", "serial number '0x10' is not hexadecimal"},
      {"0", "serial number must not be zero (RFC 5280)"},
      {"0000", "serial number must not be zero (RFC 5280)"},
      {std::string(41, '1'), "is longer than the 20 octets RFC 5280 allows"},
      {"8" + std::string(39, '0'), "is longer than the 20 octets RFC 5280 allows"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.input);
    auto serial = serial_from_hex(c.input);
    ASSERT_FALSE(serial);
    EXPECT_EQ(serial.error().code, ErrorCode::bad_request);
    EXPECT_NE(serial.error().message.find(c.message), std::string::npos) << serial.error().message;
  }
}

}  // namespace
}  // namespace ca::crypto
