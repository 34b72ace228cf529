#include "crypto/key_archive.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/pem.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::crypto {
namespace {

namespace fs = std::filesystem;
using ca::testing::TempDir;
using ca::testing::read_file;
using ca::testing::shell;
using ca::testing::write_file;
using fixtures::Issued;

constexpr std::string_view kAad = "0123456789abcdef|1a2b|CN=alice,O=Example";

// RSA-3072 generation takes a while: one storage key (and one stranger) for the whole binary.
EVP_PKEY* storage_key() {
  static ossl::UniquePtr<EVP_PKEY> key = [] {
    auto k = generate_key(KeyType::rsa_3072);
    return k ? std::move(*k) : nullptr;
  }();
  return key.get();
}

EVP_PKEY* other_storage_key() {
  static ossl::UniquePtr<EVP_PKEY> key = [] {
    auto k = generate_key(KeyType::rsa_3072);
    return k ? std::move(*k) : nullptr;
  }();
  return key.get();
}

// The public half alone, as a relying party has it.
ossl::UniquePtr<EVP_PKEY> public_only(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return nullptr;
  const unsigned char* p = der;
  ossl::UniquePtr<EVP_PKEY> pub(d2i_PUBKEY(nullptr, &p, len));
  OPENSSL_free(der);
  return pub;
}

std::vector<uint8_t> pkcs8(EVP_PKEY* key) {
  auto der = private_key_pkcs8_der(key);
  return der ? *der : std::vector<uint8_t>{};
}

// True when any `window`-byte run of `needle` occurs in `haystack`.
bool shares_a_run(const std::vector<uint8_t>& haystack, const std::vector<uint8_t>& needle, std::size_t window) {
  if (needle.size() < window) return false;
  for (std::size_t i = 0; i + window <= needle.size(); ++i)
    if (std::search(haystack.begin(), haystack.end(), needle.begin() + static_cast<std::ptrdiff_t>(i),
                    needle.begin() + static_cast<std::ptrdiff_t>(i + window)) != haystack.end())
      return true;
  return false;
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// ---- seal / unseal -----------------------------------------------------------------------------

class SealRoundTrip : public ::testing::TestWithParam<KeyType> {};

TEST_P(SealRoundTrip, UnsealGivesBackTheSamePrivateKey) {
  ASSERT_TRUE(storage_key());
  auto key = generate_key(GetParam());
  ASSERT_TRUE(key) << key.error().message;

  auto sealed = seal_private_key(key->get(), storage_key(), kAad);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(sealed->storage_key_id, public_key_id(storage_key()));
  EXPECT_EQ(sealed->iv.size(), 12u);
  EXPECT_EQ(sealed->tag.size(), 16u);
  EXPECT_EQ(sealed->wrapped_data_key.size(), 384u) << "RSA-OAEP output is the modulus size of an RSA-3072 key";
  const std::vector<uint8_t> der = pkcs8(key->get());
  ASSERT_FALSE(der.empty());
  EXPECT_EQ(sealed->ciphertext.size(), der.size()) << "GCM is a stream mode: no padding";
  EXPECT_NE(sealed->ciphertext, der);

  auto opened = unseal_private_key(*sealed, storage_key(), kAad);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(EVP_PKEY_eq(opened->get(), key->get()), 1);
  EXPECT_TRUE(keys_match(opened->get(), key->get()));
  // The private half too, not only the public one EVP_PKEY_eq compares.
  EXPECT_EQ(pkcs8(opened->get()), der);
}

TEST_P(SealRoundTrip, SurvivesTheAttributeEncoding) {
  ASSERT_TRUE(storage_key());
  auto key = generate_key(GetParam());
  ASSERT_TRUE(key) << key.error().message;
  auto sealed = seal_private_key(key->get(), storage_key(), kAad);
  ASSERT_TRUE(sealed) << sealed.error().message;
  std::vector<uint8_t> bytes = encode_sealed_key(*sealed);
  auto decoded = decode_sealed_key(bytes);
  ASSERT_TRUE(decoded) << decoded.error().message;
  auto opened = unseal_private_key(*decoded, storage_key(), kAad);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(pkcs8(opened->get()), pkcs8(key->get()));
}

TEST_P(SealRoundTrip, SealedBytesHoldNothingOfTheKeyInClear) {
  ASSERT_TRUE(storage_key());
  auto key = generate_key(GetParam());
  ASSERT_TRUE(key) << key.error().message;
  auto sealed = seal_private_key(key->get(), storage_key(), kAad);
  ASSERT_TRUE(sealed) << sealed.error().message;
  const std::vector<uint8_t> bytes = encode_sealed_key(*sealed);
  const std::vector<uint8_t> der = pkcs8(key->get());
  ASSERT_FALSE(der.empty());
  EXPECT_EQ(std::search(bytes.begin(), bytes.end(), der.begin(), der.end()), bytes.end());
  // Not even a fragment: every 16-byte run of the PKCS#8 (which holds the private scalar) is absent.
  EXPECT_FALSE(shares_a_run(bytes, der, 16));
}

TEST_P(SealRoundTrip, TwoSealsOfOneKeyUseFreshDataKeysAndIvs) {
  ASSERT_TRUE(storage_key());
  auto key = generate_key(GetParam());
  ASSERT_TRUE(key) << key.error().message;
  auto a = seal_private_key(key->get(), storage_key(), kAad);
  auto b = seal_private_key(key->get(), storage_key(), kAad);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_NE(a->iv, b->iv);
  EXPECT_NE(a->wrapped_data_key, b->wrapped_data_key);
  EXPECT_NE(a->ciphertext, b->ciphertext);
  EXPECT_NE(a->tag, b->tag);
  EXPECT_NE(encode_sealed_key(*a), encode_sealed_key(*b));
  // Each opens on its own.
  EXPECT_TRUE(unseal_private_key(*a, storage_key(), kAad));
  EXPECT_TRUE(unseal_private_key(*b, storage_key(), kAad));
}

INSTANTIATE_TEST_SUITE_P(ArchivedKeyTypes, SealRoundTrip,
                         ::testing::Values(KeyType::ec_p256, KeyType::rsa_2048, KeyType::ed25519),
                         [](const ::testing::TestParamInfo<KeyType>& info) { return fixtures::test_name(info.param); });

class SealedKeyTamperingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(storage_key());
    auto key = generate_key(KeyType::ec_p256);
    ASSERT_TRUE(key) << key.error().message;
    key_ = std::move(*key);
    auto sealed = seal_private_key(key_.get(), storage_key(), kAad);
    ASSERT_TRUE(sealed) << sealed.error().message;
    sealed_ = std::move(*sealed);
    ASSERT_TRUE(unseal_private_key(sealed_, storage_key(), kAad)) << "the untouched record must open";
  }

  ossl::UniquePtr<EVP_PKEY> key_;
  SealedKey sealed_;
};

TEST_F(SealedKeyTamperingTest, AnyAlteredFieldFailsTheIntegrityCheck) {
  const struct {
    const char* name;
    std::function<void(SealedKey&)> alter;
  } cases[] = {
      {"first ciphertext byte", [](SealedKey& s) { s.ciphertext.front() ^= 0x01; }},
      {"middle ciphertext byte", [](SealedKey& s) { s.ciphertext[s.ciphertext.size() / 2] ^= 0x80; }},
      {"last ciphertext byte", [](SealedKey& s) { s.ciphertext.back() ^= 0x01; }},
      {"ciphertext one byte shorter", [](SealedKey& s) { s.ciphertext.pop_back(); }},
      {"ciphertext one byte longer", [](SealedKey& s) { s.ciphertext.push_back(0); }},
      {"empty ciphertext", [](SealedKey& s) { s.ciphertext.clear(); }},
      {"first tag byte", [](SealedKey& s) { s.tag.front() ^= 0x01; }},
      {"last tag byte", [](SealedKey& s) { s.tag.back() ^= 0x40; }},
      {"truncated tag", [](SealedKey& s) { s.tag.pop_back(); }},
      {"first iv byte", [](SealedKey& s) { s.iv.front() ^= 0x01; }},
      {"last iv byte", [](SealedKey& s) { s.iv.back() ^= 0x01; }},
      {"iv of 16 bytes", [](SealedKey& s) { s.iv.resize(16); }},
      {"first wrapped-key byte", [](SealedKey& s) { s.wrapped_data_key.front() ^= 0x01; }},
      {"middle wrapped-key byte", [](SealedKey& s) { s.wrapped_data_key[100] ^= 0x10; }},
      {"last wrapped-key byte", [](SealedKey& s) { s.wrapped_data_key.back() ^= 0x01; }},
      {"truncated wrapped key", [](SealedKey& s) { s.wrapped_data_key.pop_back(); }},
      {"empty wrapped key", [](SealedKey& s) { s.wrapped_data_key.clear(); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SealedKey altered = sealed_;
    c.alter(altered);
    auto opened = unseal_private_key(altered, storage_key(), kAad);
    ASSERT_FALSE(opened) << "an altered record opened";
    EXPECT_TRUE(opened.error().is(ErrorCode::bad_request)) << error_code_name(opened.error().code);
    EXPECT_NE(opened.error().message.find("integrity"), std::string::npos) << opened.error().message;
  }
}

TEST_F(SealedKeyTamperingTest, OtherAssociatedDataFailsTheIntegrityCheck) {
  for (std::string_view aad : {std::string_view("0123456789abcdef|1a2c|CN=alice,O=Example"),
                               std::string_view("0123456789abcdef|1a2b|CN=mallory,O=Example"),
                               std::string_view("0123456789abcdef|1a2b|CN=alice,O=Example "),
                               std::string_view("0123456789abcdef|1a2b|CN=alice,O=Exampl"), std::string_view("")}) {
    SCOPED_TRACE(std::string(aad));
    auto opened = unseal_private_key(sealed_, storage_key(), aad);
    ASSERT_FALSE(opened);
    EXPECT_TRUE(opened.error().is(ErrorCode::bad_request)) << error_code_name(opened.error().code);
    EXPECT_NE(opened.error().message.find("integrity"), std::string::npos) << opened.error().message;
  }
}

TEST_F(SealedKeyTamperingTest, ADataKeyFromAnotherSealOfTheSameKeyDoesNotOpenIt) {
  // Both wrapped keys open fine under the storage key; the mix must still fail the tag.
  auto other = seal_private_key(key_.get(), storage_key(), kAad);
  ASSERT_TRUE(other) << other.error().message;
  SealedKey mixed = sealed_;
  mixed.wrapped_data_key = other->wrapped_data_key;
  auto opened = unseal_private_key(mixed, storage_key(), kAad);
  ASSERT_FALSE(opened);
  EXPECT_TRUE(opened.error().is(ErrorCode::bad_request));
  EXPECT_NE(opened.error().message.find("integrity"), std::string::npos) << opened.error().message;
}

TEST_F(SealedKeyTamperingTest, AnotherStorageKeyIsAConfigurationError) {
  ASSERT_TRUE(other_storage_key());
  auto opened = unseal_private_key(sealed_, other_storage_key(), kAad);
  ASSERT_FALSE(opened);
  EXPECT_TRUE(opened.error().is(ErrorCode::config)) << error_code_name(opened.error().code);
  // It names both keys (by the start of their ids) so an operator can tell which one is missing.
  EXPECT_NE(opened.error().message.find(public_key_id(storage_key()).substr(0, 16)), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find(public_key_id(other_storage_key()).substr(0, 16)), std::string::npos)
      << opened.error().message;
}

TEST_F(SealedKeyTamperingTest, ARelabelledStorageKeyIdStillDoesNotOpen) {
  // Someone rewrites the key id to make another instance try: RSA-OAEP fails, reported as integrity.
  ASSERT_TRUE(other_storage_key());
  SealedKey relabelled = sealed_;
  relabelled.storage_key_id = public_key_id(other_storage_key());
  auto opened = unseal_private_key(relabelled, other_storage_key(), kAad);
  ASSERT_FALSE(opened);
  EXPECT_TRUE(opened.error().is(ErrorCode::bad_request)) << error_code_name(opened.error().code);
  EXPECT_NE(opened.error().message.find("integrity"), std::string::npos) << opened.error().message;
}

// ---- the attribute encoding ---------------------------------------------------------------------

class SealedKeyEncodingTest : public ::testing::Test {
 protected:
  static SealedKey sample() {
    SealedKey s;
    s.storage_key_id = std::string(64, 'a');
    s.wrapped_data_key = std::vector<uint8_t>(384, 0x5a);
    s.iv = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    s.ciphertext = {0xff, 0x00, 0x7f, 0x80, 0x30, 0x82};
    s.tag = std::vector<uint8_t>(16, 0xee);
    return s;
  }
};

TEST_F(SealedKeyEncodingTest, RoundTripsEveryField) {
  const SealedKey s = sample();
  std::vector<uint8_t> bytes = encode_sealed_key(s);
  ASSERT_GE(bytes.size(), 4u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 4), "CAK1");
  EXPECT_EQ(bytes.size(), 4 + 5 * 4 + 64 + 384 + 12 + 6 + 16u) << "magic + five 4-byte lengths + the fields";
  auto d = decode_sealed_key(bytes);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->storage_key_id, s.storage_key_id);
  EXPECT_EQ(d->wrapped_data_key, s.wrapped_data_key);
  EXPECT_EQ(d->iv, s.iv);
  EXPECT_EQ(d->ciphertext, s.ciphertext);
  EXPECT_EQ(d->tag, s.tag);
  EXPECT_EQ(encode_sealed_key(*d), bytes);
}

TEST_F(SealedKeyEncodingTest, EmptyFieldsRoundTripToo) {
  SealedKey empty;
  auto d = decode_sealed_key(encode_sealed_key(empty));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->storage_key_id.empty());
  EXPECT_TRUE(d->ciphertext.empty());
  EXPECT_TRUE(d->tag.empty());
}

TEST_F(SealedKeyEncodingTest, RejectsWrongMagic) {
  std::vector<uint8_t> good = encode_sealed_key(sample());
  for (std::string_view magic : {"CAK2", "cak1", "CAK0", "XAK1"}) {
    SCOPED_TRACE(std::string(magic));
    std::vector<uint8_t> bytes = good;
    std::copy(magic.begin(), magic.end(), bytes.begin());
    auto d = decode_sealed_key(bytes);
    ASSERT_FALSE(d);
    EXPECT_TRUE(d.error().is(ErrorCode::bad_request));
  }
  for (std::vector<uint8_t> tiny : {std::vector<uint8_t>{}, std::vector<uint8_t>{'C', 'A', 'K'}}) {
    auto d = decode_sealed_key(tiny);
    ASSERT_FALSE(d) << "length " << tiny.size();
    EXPECT_TRUE(d.error().is(ErrorCode::bad_request));
  }
}

TEST_F(SealedKeyEncodingTest, RejectsEveryTruncation) {
  std::vector<uint8_t> good = encode_sealed_key(sample());
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto d = decode_sealed_key(std::span<const uint8_t>(good.data(), n));
    ASSERT_FALSE(d) << "a prefix of " << n << " of " << good.size() << " bytes decoded";
    EXPECT_TRUE(d.error().is(ErrorCode::bad_request));
  }
}

TEST_F(SealedKeyEncodingTest, RejectsTrailingBytes) {
  std::vector<uint8_t> bytes = encode_sealed_key(sample());
  bytes.push_back(0);
  auto d = decode_sealed_key(bytes);
  ASSERT_FALSE(d);
  EXPECT_TRUE(d.error().is(ErrorCode::bad_request));
  // A sixth (empty) field is trailing bytes too.
  bytes.back() = 0;
  bytes.insert(bytes.end(), {0, 0, 0});
  EXPECT_FALSE(decode_sealed_key(bytes));
}

TEST_F(SealedKeyEncodingTest, RejectsLengthsThatRunPastTheEnd) {
  std::vector<uint8_t> bytes = encode_sealed_key(sample());
  // The first length prefix (storage key id) claims 4 GiB.
  std::fill(bytes.begin() + 4, bytes.begin() + 8, 0xff);
  auto d = decode_sealed_key(bytes);
  ASSERT_FALSE(d);
  EXPECT_TRUE(d.error().is(ErrorCode::bad_request));
  // The last one (tag) claims one byte more than there is.
  std::vector<uint8_t> last = encode_sealed_key(sample());
  last[last.size() - 16 - 1] = 17;
  EXPECT_FALSE(decode_sealed_key(last));
}

// ---- identities of keys -------------------------------------------------------------------------

TEST(PublicKeyId, IsTheSha256OfTheSubjectPublicKeyInfo) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  const std::string id = public_key_id(key->get());
  EXPECT_EQ(id.size(), 64u);
  EXPECT_TRUE(is_lower_hex(id)) << id;
  auto pub = public_only(key->get());
  ASSERT_TRUE(pub);
  EXPECT_EQ(public_key_id(pub.get()), id) << "the public half has the same id";

  // Against the command line: SHA-256 over `openssl pkey -pubout -outform DER`.
  TempDir tmp("ca-kid");
  write_file(tmp / "k.pem", private_key_to_pem(key->get()));
  auto r = shell("openssl pkey -in " + (tmp / "k.pem").string() + " -pubout -outform DER | openssl dgst -sha256 -r");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, 64), id);

  auto other = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(other);
  EXPECT_NE(public_key_id(other->get()), id);
}

TEST(KeysMatch, OnlyTheTwoHalvesOfOneKeyMatch) {
  auto ec = generate_key(KeyType::ec_p256);
  auto ec2 = generate_key(KeyType::ec_p256);
  auto ed = generate_key(KeyType::ed25519);
  ASSERT_TRUE(ec && ec2 && ed);
  auto ec_pub = public_only(ec->get());
  auto ed_pub = public_only(ed->get());
  ASSERT_TRUE(ec_pub && ed_pub);
  EXPECT_TRUE(keys_match(ec->get(), ec_pub.get()));
  EXPECT_TRUE(keys_match(ed->get(), ed_pub.get()));
  EXPECT_FALSE(keys_match(ec2->get(), ec_pub.get()));
  EXPECT_FALSE(keys_match(ed->get(), ec_pub.get())) << "other algorithm";
  EXPECT_FALSE(keys_match(storage_key(), ec_pub.get()));
}

TEST(PrivateKeyPkcs8Der, IsWhatOpensslWrites) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key) << key.error().message;
  auto der = private_key_pkcs8_der(key->get());
  ASSERT_TRUE(der) << der.error().message;
  std::string from_pem = fixtures::pem_body_to_der(private_key_to_pem(key->get()));
  EXPECT_EQ(std::string(der->begin(), der->end()), from_pem);
  // A public key alone has no PKCS#8.
  auto pub = public_only(key->get());
  ASSERT_TRUE(pub);
  EXPECT_FALSE(private_key_pkcs8_der(pub.get()));
}

// ---- the transport envelope ---------------------------------------------------------------------

enum class Content { pem_pkcs8, der_pkcs8, pem_traditional };

struct EnvelopeCase {
  const char* name;
  KeyType key_type;
  Content content;
  const char* outform;  // PEM or DER
  bool oaep;
};

void PrintTo(const EnvelopeCase& c, std::ostream* os) { *os << c.name; }

// A CA, the transport certificate it issued (RSA: CMS key transport), and a second RSA
// certificate nobody should send keys to. Files in one folder, made once per suite.
class KeyEnvelopeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>("ca-kra-env");
    auto ca = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Envelope CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::make_unique<Issued>(std::move(*ca));
    auto transport = issue(KeyType::rsa_2048, "CN=KRA Transport Certificate,O=Example", "7001");
    ASSERT_TRUE(transport) << transport.error().message;
    transport_ = std::make_unique<Issued>(std::move(*transport));
    auto stranger = issue(KeyType::rsa_2048, "CN=Someone Else,O=Example", "7002");
    ASSERT_TRUE(stranger) << stranger.error().message;
    stranger_ = std::make_unique<Issued>(std::move(*stranger));
    write_file(path("transport.pem"), certificate_to_pem(transport_->cert.get()));
    write_file(path("transport.key"), private_key_to_pem(transport_->key.get()));
    write_file(path("stranger.pem"), certificate_to_pem(stranger_->cert.get()));
  }
  static void TearDownTestSuite() {
    transport_.reset();
    stranger_.reset();
    ca_.reset();
    dir_.reset();
  }

  static Result<Issued> issue(KeyType type, std::string_view subject, std::string serial) {
    Issued out;
    CA_TRY(out.key, generate_key(type));
    CA_TRY(out.subject, parse_name(subject));
    CertificateSpec spec = fixtures::day_spec(out.subject.get(), out.key.get(), std::move(serial));
    spec.key_usage = {"keyEncipherment", "digitalSignature"};
    CA_TRY(out.cert, sign_certificate(spec, ca_->cert.get(), ca_->key.get()));
    return out;
  }

  static fs::path path(const std::string& name) { return *dir_ / name; }

  // `openssl cms -encrypt` exactly as a client runs it; returns the envelope bytes.
  static std::string encrypt(const fs::path& content, const std::string& outform, const std::string& recipients) {
    static int n = 0;
    fs::path out = path("envelope-" + std::to_string(++n));
    auto r = shell("openssl cms -encrypt -binary -aes-256-cbc -in " + content.string() + " -outform " + outform +
                   " -out " + out.string() + " " + recipients);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return read_file(out);
  }
  static std::string to_transport(bool oaep = false) {
    return "-recip " + path("transport.pem").string() + (oaep ? " -keyopt rsa_padding_mode:oaep" : "");
  }

  static Result<ossl::UniquePtr<EVP_PKEY>> open(std::string_view envelope) {
    return open_key_envelope(envelope, transport_->cert.get(), transport_->key.get());
  }

  static void expect_refused(const Result<ossl::UniquePtr<EVP_PKEY>>& r, std::string_view fragment) {
    ASSERT_FALSE(r) << "the envelope was accepted";
    EXPECT_TRUE(r.error().is(ErrorCode::bad_request)) << error_code_name(r.error().code) << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline std::unique_ptr<Issued> ca_, transport_, stranger_;
};

class ClientEnvelope : public KeyEnvelopeTest, public ::testing::WithParamInterface<EnvelopeCase> {};

TEST_P(ClientEnvelope, OpensWhatTheOpensslCommandLineSealed) {
  const EnvelopeCase& c = GetParam();
  auto key = generate_key(c.key_type);
  ASSERT_TRUE(key) << key.error().message;
  fs::path content = path(std::string(c.name) + ".key");
  switch (c.content) {
    case Content::pem_pkcs8:
      write_file(content, private_key_to_pem(key->get()));
      break;
    case Content::der_pkcs8: {
      auto der = private_key_pkcs8_der(key->get());
      ASSERT_TRUE(der) << der.error().message;
      write_file(content, std::string(der->begin(), der->end()));
      break;
    }
    case Content::pem_traditional: {
      fs::path p8 = path(std::string(c.name) + ".p8");
      write_file(p8, private_key_to_pem(key->get()));
      auto r = shell("openssl pkey -traditional -in " + p8.string() + " -out " + content.string());
      ASSERT_EQ(r.exit_code, 0) << r.output;
      ASSERT_EQ(read_file(content).find("-----BEGIN PRIVATE KEY-----"), std::string::npos) << "not traditional";
      break;
    }
  }
  std::string envelope = encrypt(content, c.outform, to_transport(c.oaep));
  ASSERT_FALSE(envelope.empty());
  EXPECT_EQ(envelope.starts_with("-----BEGIN CMS-----"), std::string(c.outform) == "PEM");

  auto opened = open(envelope);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_TRUE(keys_match(opened->get(), key->get()));
  EXPECT_EQ(EVP_PKEY_eq(opened->get(), key->get()), 1);
  EXPECT_EQ(pkcs8(opened->get()), pkcs8(key->get())) << "the private half differs";
}

INSTANTIATE_TEST_SUITE_P(
    OpensslCms, ClientEnvelope,
    ::testing::Values(EnvelopeCase{"ec_pem_pkcs8_in_pem", KeyType::ec_p256, Content::pem_pkcs8, "PEM", false},
                      EnvelopeCase{"ec_pem_pkcs8_in_der", KeyType::ec_p256, Content::pem_pkcs8, "DER", false},
                      EnvelopeCase{"ec_der_pkcs8_in_pem", KeyType::ec_p256, Content::der_pkcs8, "PEM", false},
                      EnvelopeCase{"ec_der_pkcs8_in_der", KeyType::ec_p256, Content::der_pkcs8, "DER", false},
                      EnvelopeCase{"ec_pem_pkcs8_in_pem_oaep", KeyType::ec_p256, Content::pem_pkcs8, "PEM", true},
                      EnvelopeCase{"ec_der_pkcs8_in_der_oaep", KeyType::ec_p256, Content::der_pkcs8, "DER", true},
                      EnvelopeCase{"ec_traditional_in_pem", KeyType::ec_p256, Content::pem_traditional, "PEM", false},
                      EnvelopeCase{"rsa_pem_pkcs8_in_der_oaep", KeyType::rsa_2048, Content::pem_pkcs8, "DER", true},
                      EnvelopeCase{"rsa_der_pkcs8_in_pem", KeyType::rsa_2048, Content::der_pkcs8, "PEM", false},
                      EnvelopeCase{"rsa_traditional_in_der", KeyType::rsa_2048, Content::pem_traditional, "DER", false},
                      EnvelopeCase{"ed25519_pem_pkcs8_in_pem", KeyType::ed25519, Content::pem_pkcs8, "PEM", false},
                      EnvelopeCase{"ed25519_der_pkcs8_in_der_oaep", KeyType::ed25519, Content::der_pkcs8, "DER",
                                   true}),
    [](const ::testing::TestParamInfo<EnvelopeCase>& info) { return std::string(info.param.name); });

TEST_F(KeyEnvelopeTest, AnEnvelopeWithSeveralRecipientsIncludingUsOpens) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  fs::path content = write_file(path("multi.key"), private_key_to_pem(key->get()));
  std::string envelope = encrypt(content, "PEM", "-recip " + path("stranger.pem").string() + " " + to_transport(true));
  auto opened = open(envelope);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_TRUE(keys_match(opened->get(), key->get()));
}

TEST_F(KeyEnvelopeTest, AnEnvelopeToAnotherCertificateIsRefused) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  fs::path content = write_file(path("stranger.key"), private_key_to_pem(key->get()));
  for (const char* outform : {"PEM", "DER"}) {
    SCOPED_TRACE(outform);
    std::string envelope = encrypt(content, outform, "-recip " + path("stranger.pem").string());
    expect_refused(open(envelope), "transport certificate");
  }
}

TEST_F(KeyEnvelopeTest, GarbageIsRefused) {
  const struct {
    const char* name;
    std::string bytes;
  } cases[] = {
      {"empty", ""},
      {"text", "this is not a CMS structure"},
      {"pem armour around garbage", "-----BEGIN CMS-----\nbm90IGEgQ01TIHN0cnVjdHVyZQ==\n-----END CMS-----\n"},
      {"broken pem", "-----BEGIN CMS-----\n%%%%\n"},
      {"a DER SEQUENCE of nothing", std::string("\x30\x00", 2)},
      {"too large", std::string(65537, 'A')},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = open(c.bytes);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(ErrorCode::bad_request)) << error_code_name(r.error().code) << ": " << r.error().message;
  }
}

TEST_F(KeyEnvelopeTest, SignedDataIsNotAnEnvelope) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  auto der = private_key_pkcs8_der(key->get());
  ASSERT_TRUE(der);
  fs::path pem_content = write_file(path("signed.key"), private_key_to_pem(key->get()));
  fs::path der_content = write_file(path("signed.der"), std::string(der->begin(), der->end()));
  const struct {
    fs::path content;
    const char* outform;
    const char* message;
  } cases[] = {
      {der_content, "PEM", "EnvelopedData"},
      {der_content, "DER", "EnvelopedData"},
      {pem_content, "PEM", "EnvelopedData"},
      // Signed data carries its content in clear: a PEM key inside a DER structure. Refused all the
      // same, though as "not CMS" (the text "-----BEGIN" inside sends it down the PEM path).
      {pem_content, "DER", "the key envelope"},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.content.filename().string() + " in " + c.outform);
    fs::path out = path("signed-" + std::to_string(++n));
    auto r = shell("openssl cms -sign -nodetach -binary -in " + c.content.string() + " -signer " +
                   path("transport.pem").string() + " -inkey " + path("transport.key").string() + " -outform " +
                   c.outform + " -out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_refused(open(read_file(out)), c.message);
  }
}

// A DER envelope carries the recipient's issuer name in clear: "-----BEGIN" in it is no PEM.
TEST_F(KeyEnvelopeTest, ADerEnvelopeWhoseRecipientIssuerHasPemArmourInItsNameOpens) {
  auto odd_ca = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=-----BEGIN CA,O=Example");
  ASSERT_TRUE(odd_ca) << odd_ca.error().message;
  Issued transport;
  auto key = generate_key(KeyType::rsa_2048);
  auto subject = parse_name("CN=Odd Transport,O=Example");
  ASSERT_TRUE(key && subject);
  transport.key = std::move(*key);
  transport.subject = std::move(*subject);
  CertificateSpec spec = fixtures::day_spec(transport.subject.get(), transport.key.get(), "99");
  spec.key_usage = {"keyEncipherment"};
  auto cert = sign_certificate(spec, odd_ca->cert.get(), odd_ca->key.get());
  ASSERT_TRUE(cert) << cert.error().message;
  transport.cert = std::move(*cert);
  write_file(path("odd.pem"), certificate_to_pem(transport.cert.get()));
  auto archived = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(archived);
  fs::path content = write_file(path("odd.key"), private_key_to_pem(archived->get()));
  std::string envelope = encrypt(content, "DER", "-recip " + path("odd.pem").string());
  auto opened = open_key_envelope(envelope, transport.cert.get(), transport.key.get());
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_TRUE(keys_match(opened->get(), archived->get()));
}

TEST_F(KeyEnvelopeTest, AnEnvelopeThatHoldsNoKeyIsRefused) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  fs::path text = write_file(path("hello.txt"), "hello, this is not a private key\n");
  fs::path cert = write_file(path("leaf.pem"), certificate_to_pem(transport_->cert.get()));
  // A key under a password: the server cannot open it, and must not guess.
  fs::path plain = write_file(path("plain.key"), private_key_to_pem(key->get()));
  fs::path encrypted = path("encrypted.key");
  auto r = shell("openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:secret123 -in " + plain.string() + " -out " +
                 encrypted.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(read_file(encrypted).find("ENCRYPTED PRIVATE KEY"), std::string::npos);
  fs::path pub = path("public.pem");
  r = shell("openssl pkey -pubout -in " + plain.string() + " -out " + pub.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;

  for (const fs::path& content : {text, cert, encrypted, pub}) {
    SCOPED_TRACE(content.filename().string());
    expect_refused(open(encrypt(content, "DER", to_transport())), "private key");
  }
}

TEST_F(KeyEnvelopeTest, ATamperedEnvelopeIsRefused) {
  auto key = generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  fs::path content = write_file(path("tamper.key"), private_key_to_pem(key->get()));
  std::string envelope = encrypt(content, "DER", to_transport());
  ASSERT_TRUE(open(envelope)) << "the untouched envelope must open";
  // The last bytes are the AES-CBC ciphertext: a flip there breaks the padding or the key.
  std::string altered = envelope;
  altered[altered.size() - 20] ^= 0x01;
  altered.back() ^= 0x01;
  auto r = open(altered);
  ASSERT_FALSE(r) << "a tampered envelope opened";
  EXPECT_TRUE(r.error().is(ErrorCode::bad_request)) << error_code_name(r.error().code);
}

}  // namespace
}  // namespace ca::crypto
