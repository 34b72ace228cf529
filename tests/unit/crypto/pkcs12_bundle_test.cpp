#include "crypto/pkcs12_bundle.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pkcs12.h>

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
using fixtures::make_self_signed_ca;

// The floor keeps most cases fast; one case checks the default count through the openssl CLI.
const Pkcs12Options kFast{kMinPkcs12Iterations};
constexpr std::string_view kPassword = "correct horse battery staple";

mode_t file_mode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

Result<Issued> issue_leaf(const Issued& ca, std::string_view subject, std::string serial_hex) {
  Issued leaf;
  CA_TRY(leaf.key, generate_key(KeyType::ec_p256));
  CA_TRY(leaf.subject, parse_name(subject));
  CertificateSpec spec = fixtures::day_spec(leaf.subject.get(), leaf.key.get(), std::move(serial_hex));
  spec.key_usage = {"digitalSignature"};
  CA_TRY(leaf.cert, sign_certificate(spec, ca.cert.get(), ca.key.get()));
  return leaf;
}

Pkcs12Item item(std::string name, const Issued& issued, bool with_key, std::string trust) {
  Pkcs12Item i;
  i.friendly_name = std::move(name);
  i.cert = ossl::up_ref(issued.cert.get());
  if (with_key) i.key = ossl::up_ref(issued.key.get());
  i.trust_flags = std::move(trust);
  return i;
}

std::span<const uint8_t> bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

class Pkcs12BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = make_self_signed_ca(KeyType::ec_p256, "CN=Bundle CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    auto leaf = issue_leaf(ca_, "CN=OCSP Signing Certificate,O=Example", "2a");
    ASSERT_TRUE(leaf) << leaf.error().message;
    leaf_ = std::move(*leaf);
  }

  std::vector<Pkcs12Item> items() const {
    std::vector<Pkcs12Item> v;
    v.push_back(item("caSigningCert cert-t CA", ca_, true, "CTu,Cu,Cu"));
    v.push_back(item("ocspSigningCert cert-t CA", leaf_, true, "u,u,u"));
    return v;
  }

  Issued ca_, leaf_;
};

TEST_F(Pkcs12BundleTest, RoundTripKeepsCertificatesKeysNamesAndTrust) {
  auto list = items();
  auto der = encode_pkcs12(list, kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  auto back = decode_pkcs12(*der, kPassword);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);

  const auto& ca = (*back)[0];
  EXPECT_EQ(ca.friendly_name, "caSigningCert cert-t CA");
  EXPECT_EQ(ca.trust_flags, "CTu,Cu,Cu");
  EXPECT_EQ(ca.id, sha1_fingerprint_hex(ca_.cert.get()));
  EXPECT_EQ(ca.serial_hex, "1");
  EXPECT_EQ(ca.subject_dn, "CN=Bundle CA,O=Example");
  EXPECT_EQ(ca.issuer_dn, "CN=Bundle CA,O=Example");
  EXPECT_EQ(X509_cmp(ca.cert.get(), ca_.cert.get()), 0);
  ASSERT_TRUE(ca.has_key);
  EXPECT_EQ(EVP_PKEY_eq(ca.key.get(), ca_.key.get()), 1);

  const auto& leaf = (*back)[1];
  EXPECT_EQ(leaf.friendly_name, "ocspSigningCert cert-t CA");
  EXPECT_EQ(leaf.trust_flags, "u,u,u");
  EXPECT_EQ(leaf.serial_hex, "2a");
  EXPECT_EQ(leaf.subject_dn, "CN=OCSP Signing Certificate,O=Example");
  EXPECT_EQ(leaf.issuer_dn, "CN=Bundle CA,O=Example");
  ASSERT_TRUE(leaf.has_key);
  EXPECT_EQ(EVP_PKEY_eq(leaf.key.get(), leaf_.key.get()), 1);
}

TEST_F(Pkcs12BundleTest, CertificatesWithoutKeys) {
  std::vector<Pkcs12Item> list;
  list.push_back(item("caSigningCert cert-t CA", ca_, false, "CT,C,C"));
  list.push_back(item("ocspSigningCert cert-t CA", leaf_, false, ""));
  auto der = encode_pkcs12(list, kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  auto back = decode_pkcs12(*der, kPassword);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 2u);
  for (const auto& c : *back) {
    SCOPED_TRACE(c.friendly_name);
    EXPECT_FALSE(c.has_key);
    EXPECT_EQ(c.key, nullptr);
  }
  EXPECT_EQ((*back)[0].trust_flags, "CT,C,C");
  EXPECT_EQ((*back)[1].trust_flags, "");
}

TEST_F(Pkcs12BundleTest, WrongPasswordIsOneClearError) {
  auto der = encode_pkcs12(items(), kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  for (std::string_view wrong : {"correct horse battery stapl", "Correct horse battery staple", "x"}) {
    SCOPED_TRACE(wrong);
    auto back = decode_pkcs12(*der, wrong);
    ASSERT_FALSE(back);
    EXPECT_TRUE(back.error().is(ErrorCode::unauthorized));
    EXPECT_EQ(back.error().message, "wrong password or damaged file");
  }
}

TEST_F(Pkcs12BundleTest, DamagedOrForeignBytesAreRejected) {
  auto der = encode_pkcs12(items(), kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  // A flipped byte inside the encrypted content: the MAC no longer matches.
  std::vector<uint8_t> flipped = *der;
  flipped[flipped.size() / 2] ^= 0x01;
  auto a = decode_pkcs12(flipped, kPassword);
  ASSERT_FALSE(a);
  EXPECT_TRUE(a.error().is(ErrorCode::unauthorized) || a.error().is(ErrorCode::bad_request)) << a.error().message;

  std::vector<uint8_t> truncated(der->begin(), der->begin() + static_cast<long>(der->size() / 3));
  auto b = decode_pkcs12(truncated, kPassword);
  ASSERT_FALSE(b);
  EXPECT_TRUE(b.error().is(ErrorCode::bad_request)) << b.error().message;

  std::string pem = certificate_to_pem(ca_.cert.get());
  auto c = decode_pkcs12(bytes_of(pem), kPassword);
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(ErrorCode::bad_request));
}

TEST_F(Pkcs12BundleTest, RefusesWeakSettingsAndMismatchedKeys) {
  auto empty_password = encode_pkcs12(items(), "", kFast);
  ASSERT_FALSE(empty_password);
  EXPECT_TRUE(empty_password.error().is(ErrorCode::bad_request));

  auto weak = encode_pkcs12(items(), kPassword, Pkcs12Options{kMinPkcs12Iterations - 1});
  ASSERT_FALSE(weak);
  EXPECT_NE(weak.error().message.find("iterations"), std::string::npos);

  std::vector<Pkcs12Item> mismatched;
  mismatched.push_back(item("caSigningCert cert-t CA", ca_, false, ""));
  mismatched[0].key = ossl::up_ref(leaf_.key.get());
  auto bad = encode_pkcs12(mismatched, kPassword, kFast);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("does not match"), std::string::npos) << bad.error().message;

  auto nothing = encode_pkcs12({}, kPassword, kFast);
  EXPECT_FALSE(nothing);
}

// What the openssl command line reports about a bundle written with the default settings: PBES2
// with PBKDF2-HMAC-SHA-256 and AES-256-CBC for both safes, an SHA-256 MAC, the default count.
TEST_F(Pkcs12BundleTest, OpensslSeesPbes2Aes256AndSha256MacWithTheDefaultIterations) {
  TempDir dir("p12");
  auto der = encode_pkcs12(items(), kPassword);
  ASSERT_TRUE(der) << der.error().message;
  ASSERT_TRUE(write_pkcs12_file(dir / "b.p12", *der, false));
  write_file(dir / "pw", std::string(kPassword) + "\n");

  auto info = shell(fmt::format("openssl pkcs12 -info -noout -in '{}' -passin 'file:{}'", (dir / "b.p12").string(),
                                (dir / "pw").string()));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  const std::string iterations = std::to_string(kDefaultPkcs12Iterations);
  EXPECT_NE(info.output.find("MAC: sha256, Iteration " + iterations), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration " + iterations +
                             ", PRF hmacWithSHA256"),
            std::string::npos)
      << info.output;
  std::string keybag = "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration " + iterations + ", PRF hmacWithSHA256";
  std::size_t first = info.output.find(keybag);
  ASSERT_NE(first, std::string::npos) << info.output;
  EXPECT_NE(info.output.find(keybag, first + 1), std::string::npos) << "two keys, two shrouded key bags";
  EXPECT_EQ(info.output.find("RC2"), std::string::npos);
  EXPECT_EQ(info.output.find("3DES"), std::string::npos);

  auto names = shell(fmt::format("openssl pkcs12 -in '{}' -passin 'file:{}' -nokeys", (dir / "b.p12").string(),
                                 (dir / "pw").string()));
  ASSERT_EQ(names.exit_code, 0) << names.output;
  EXPECT_NE(names.output.find("friendlyName: caSigningCert cert-t CA"), std::string::npos) << names.output;
  EXPECT_NE(names.output.find("friendlyName: ocspSigningCert cert-t CA"), std::string::npos);
  EXPECT_NE(names.output.find(std::string(kTrustFlagsOid) + ": CTu,Cu,Cu"), std::string::npos) << names.output;

  // And the keys come out as the keys we put in.
  auto keys = shell(fmt::format("openssl pkcs12 -in '{}' -passin 'file:{}' -nocerts -nodes | openssl pkey -pubout",
                                (dir / "b.p12").string(), (dir / "pw").string()));
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  auto ca_pub = shell(fmt::format("openssl x509 -noout -pubkey <<'EOF'\n{}EOF", certificate_to_pem(ca_.cert.get())));
  ASSERT_NE(ca_pub.output.find("BEGIN PUBLIC KEY"), std::string::npos) << ca_pub.output;
  EXPECT_NE(keys.output.find(ca_pub.output), std::string::npos);

  auto wrong = shell(fmt::format("openssl pkcs12 -info -noout -in '{}' -passin pass:nope", (dir / "b.p12").string()));
  EXPECT_NE(wrong.exit_code, 0);
}

// Bundles written by the openssl command line (its own defaults) read back too.
TEST_F(Pkcs12BundleTest, ReadsBundlesOfTheOpensslCommandLine) {
  TempDir dir("p12");
  write_file(dir / "ca.pem", certificate_to_pem(ca_.cert.get()));
  write_file(dir / "ca.key", private_key_to_pem(ca_.key.get()));
  write_file(dir / "pw", "pw-from-openssl\n");
  auto made = shell(fmt::format(
      "cd '{}' && openssl pkcs12 -export -in ca.pem -inkey ca.key -name 'caSigningCert cert-x CA' -passout file:pw "
      "-out x.p12",
      dir.path().string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto back = read_pkcs12_file(dir / "x.p12", "pw-from-openssl");
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0].friendly_name, "caSigningCert cert-x CA");
  EXPECT_TRUE((*back)[0].has_key);
  EXPECT_EQ((*back)[0].trust_flags, "");
}

TEST_F(Pkcs12BundleTest, FileIsPrivateAtomicAndNeverSilentlyReplaced) {
  TempDir dir("p12");
  auto der = encode_pkcs12(items(), kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  const fs::path file = dir / "bundle.p12";
  ASSERT_TRUE(write_pkcs12_file(file, *der, false));
  EXPECT_EQ(file_mode(file), 0600);
  EXPECT_EQ(read_file(file).size(), der->size());

  write_file(dir / "other.p12", "not mine");
  auto refused = write_pkcs12_file(dir / "other.p12", *der, false);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(ErrorCode::conflict));
  EXPECT_EQ(read_file(dir / "other.p12"), "not mine");

  ASSERT_TRUE(write_pkcs12_file(dir / "other.p12", *der, true));
  EXPECT_EQ(file_mode(dir / "other.p12"), 0600);
  auto back = read_pkcs12_file(dir / "other.p12", kPassword);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->size(), 2u);

  // No staging files left behind.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bundle.p12", "other.p12"}));
}

TEST(Pkcs12Password, FirstLineWithoutItsLineEnd) {
  TempDir dir("p12pw");
  struct Case {
    std::string content;
    std::string expected;
  } cases[] = {
      {"secret\n", "secret"},
      {"secret", "secret"},
      {"secret\r\n", "secret"},
      {"sec ret \nsecond line\n", "sec ret "},
      {"p\xc3\xa4ss\n", "p\xc3\xa4ss"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.content);
    write_file(dir / "pw", c.content);
    auto pw = read_password((dir / "pw").string());
    ASSERT_TRUE(pw) << pw.error().message;
    EXPECT_EQ(pw->view(), c.expected);
  }
  for (std::string empty : {"", "\n", "\r\n"}) {
    write_file(dir / "pw", empty);
    auto pw = read_password((dir / "pw").string());
    ASSERT_FALSE(pw);
    EXPECT_NE(pw.error().message.find("is empty"), std::string::npos);
  }
  auto missing = read_password((dir / "nope").string());
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(ErrorCode::io));
}

// ---- Bundles that must not open ----
//
// A bundle without a MAC could be anyone's: refused whatever the password, the right one too. So is
// a private key in clear (a keyBag rather than a pkcs8ShroudedKeyBag). Each such bundle is built
// in-process with OpenSSL or by the openssl command line, and is otherwise well formed (the openssl
// command line reads it), so the refusal is ours and not a parse error.

constexpr std::string_view kNoMacMessage =
    "the bundle has no integrity MAC; refusing it (a tampered or hand-made bundle)";
constexpr std::string_view kPlainKeyMessage = "the bundle holds an unencrypted private key; refusing it";
constexpr std::string_view kName = "caSigningCert cert-t CA";
// What the openssl command line uses: these bundles are for reading, so speed over strength.
constexpr int kBuildIterations = 2048;
// A plain safe (PKCS7 data) or a plain keyBag, in OpenSSL's PKCS12_add_* calls.
constexpr int kPlain = -1;

struct SafeBagsFree {
  void operator()(STACK_OF(PKCS12_SAFEBAG) * p) const { sk_PKCS12_SAFEBAG_pop_free(p, PKCS12_SAFEBAG_free); }
};
struct SafesFree {
  void operator()(STACK_OF(PKCS7) * p) const { sk_PKCS7_pop_free(p, PKCS7_free); }
};
using TestSafeBags = std::unique_ptr<STACK_OF(PKCS12_SAFEBAG), SafeBagsFree>;
using TestSafes = std::unique_ptr<STACK_OF(PKCS7), SafesFree>;

// The DER of `p12`; empty when there is none.
std::vector<uint8_t> der_of(PKCS12* p12) {
  int len = p12 ? i2d_PKCS12(p12, nullptr) : 0;
  if (len <= 0) return {};
  std::vector<uint8_t> der(static_cast<std::size_t>(len));
  unsigned char* out = der.data();
  if (i2d_PKCS12(p12, &out) != len) return {};
  return der;
}

// PKCS12_create_ex, as `openssl pkcs12 -export` calls it: key_nid -1 is "-keypbe NONE" (a
// keyBag), mac_iter -1 is "-nomac".
std::vector<uint8_t> create_bundle(const Issued& ca, int key_nid, int mac_iter) {
  const std::string pass(kPassword), name(kName);
  ossl::UniquePtr<PKCS12> p12(PKCS12_create_ex(pass.c_str(), name.c_str(), ca.key.get(), ca.cert.get(), nullptr,
                                               key_nid, 0, kBuildIterations, mac_iter, 0, nullptr, nullptr));
  return der_of(p12.get());
}

// A bundle put together bag by bag. NID_aes_256_cbc: an encrypted safe or a shrouded key bag;
// kPlain: a plain safe or a keyBag.
struct Layout {
  int cert_safe;
  int key_bag;
  int key_safe;
  bool mac;
};

std::vector<uint8_t> assemble_bundle(const Issued& ca, const Layout& layout) {
  const std::string pass(kPassword), name(kName);
  TestSafeBags cert_bags(sk_PKCS12_SAFEBAG_new_null()), key_bags(sk_PKCS12_SAFEBAG_new_null());
  TestSafes safes(sk_PKCS7_new_null());
  if (!cert_bags || !key_bags || !safes) return {};
  STACK_OF(PKCS12_SAFEBAG)* certs = cert_bags.get();
  STACK_OF(PKCS12_SAFEBAG)* keys = key_bags.get();
  STACK_OF(PKCS7)* all = safes.get();
  PKCS12_SAFEBAG* cert_bag = PKCS12_add_cert(&certs, ca.cert.get());
  PKCS12_SAFEBAG* key_bag = PKCS12_add_key_ex(&keys, ca.key.get(), 0, kBuildIterations, layout.key_bag, pass.c_str(),
                                              nullptr, nullptr);
  if (!cert_bag || !key_bag || PKCS12_add_friendlyname_utf8(cert_bag, name.c_str(), -1) != 1 ||
      PKCS12_add_friendlyname_utf8(key_bag, name.c_str(), -1) != 1)
    return {};
  if (!PKCS12_add_safe_ex(&all, certs, layout.cert_safe, kBuildIterations, pass.c_str(), nullptr, nullptr) ||
      !PKCS12_add_safe_ex(&all, keys, layout.key_safe, kBuildIterations, pass.c_str(), nullptr, nullptr))
    return {};
  ossl::UniquePtr<PKCS12> p12(PKCS12_add_safes_ex(all, 0, nullptr, nullptr));
  if (!p12) return {};
  if (layout.mac && PKCS12_set_mac(p12.get(), pass.c_str(), -1, nullptr, 0, kBuildIterations, nullptr) != 1) return {};
  return der_of(p12.get());
}

std::vector<uint8_t> our_bundle(const Issued& ca) {
  std::vector<Pkcs12Item> items;
  items.push_back(item(std::string(kName), ca, true, "CTu,Cu,Cu"));
  auto der = encode_pkcs12(items, kPassword, kFast);
  return der ? std::move(*der) : std::vector<uint8_t>();
}

// Our own bundle with its MAC taken off: the same safes, re-wrapped without one.
std::vector<uint8_t> our_bundle_without_its_mac(const Issued& ca) {
  std::vector<uint8_t> der = our_bundle(ca);
  const unsigned char* in = der.data();
  ossl::UniquePtr<PKCS12> p12(d2i_PKCS12(nullptr, &in, static_cast<long>(der.size())));
  TestSafes safes(p12 ? PKCS12_unpack_authsafes(p12.get()) : nullptr);
  if (!safes) return {};
  ossl::UniquePtr<PKCS12> bare(PKCS12_add_safes_ex(safes.get(), 0, nullptr, nullptr));
  return der_of(bare.get());
}

// `openssl pkcs12 -export` of the CA certificate and key with extra `options`.
std::vector<uint8_t> openssl_export(const Issued& ca, const fs::path& dir, std::string_view options) {
  write_file(dir / "ca.pem", certificate_to_pem(ca.cert.get()));
  write_file(dir / "ca.key", private_key_to_pem(ca.key.get()));
  write_file(dir / "pw", std::string(kPassword) + "\n");
  auto made = shell(fmt::format("cd '{}' && openssl pkcs12 -export -in ca.pem -inkey ca.key -name '{}' -passout file:pw "
                                "{} -out made.p12",
                                dir.string(), kName, options));
  if (made.exit_code != 0) {
    ADD_FAILURE() << made.output;
    return {};
  }
  std::string bytes = read_file(dir / "made.p12");
  return {bytes.begin(), bytes.end()};
}

struct BundleCase {
  std::string name;
  std::function<std::vector<uint8_t>(const Issued& ca, const fs::path& dir)> build;
  std::string_view refusal;  // empty: the bundle opens
};

std::string case_name(const ::testing::TestParamInfo<BundleCase>& info) { return info.param.name; }

class BundleCaseTest : public ::testing::TestWithParam<BundleCase> {
 protected:
  void SetUp() override {
    auto ca = make_self_signed_ca(KeyType::ec_p256, "CN=Tamper CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    bundle_ = GetParam().build(ca_, dir_.path());
    ASSERT_FALSE(bundle_.empty()) << "cannot build the bundle: " << ossl::drain_errors();
    file_ = dir_ / "bundle.p12";
    ASSERT_TRUE(write_pkcs12_file(file_, bundle_, false));
  }

  TempDir dir_{"p12-case"};
  Issued ca_;
  std::vector<uint8_t> bundle_;
  fs::path file_;
};

using TamperedBundleTest = BundleCaseTest;
using AcceptedBundleTest = BundleCaseTest;

TEST_P(TamperedBundleTest, RefusedWhateverThePassword) {
  // Well formed, and the openssl command line opens it (with a warning for a missing MAC).
  auto openssl = shell(fmt::format("printf '%s\\n' '{}' | openssl pkcs12 -in '{}' -passin stdin -nodes -out /dev/null",
                                   kPassword, file_.string()));
  EXPECT_EQ(openssl.exit_code, 0) << openssl.output;

  for (std::string_view password : {kPassword, std::string_view("not the password"), std::string_view("")}) {
    SCOPED_TRACE(fmt::format("password '{}'", password));
    auto decoded = decode_pkcs12(bundle_, password);
    ASSERT_FALSE(decoded);
    EXPECT_TRUE(decoded.error().is(ErrorCode::bad_request)) << decoded.error().message;
    EXPECT_EQ(decoded.error().message, GetParam().refusal);

    auto read = read_pkcs12_file(file_, password);
    ASSERT_FALSE(read);
    EXPECT_TRUE(read.error().is(ErrorCode::bad_request));
    EXPECT_EQ(read.error().message, fmt::format("{}: {}", file_.string(), GetParam().refusal));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pkcs12, TamperedBundleTest,
    ::testing::Values(
        BundleCase{"OursWithItsMacStripped", [](const Issued& ca, const fs::path&) { return our_bundle_without_its_mac(ca); },
                   kNoMacMessage},
        BundleCase{"CreatedWithoutMac",
                   [](const Issued& ca, const fs::path&) { return create_bundle(ca, 0, -1); }, kNoMacMessage},
        BundleCase{"CreatedWithAPlainKeyBag",
                   [](const Issued& ca, const fs::path&) { return create_bundle(ca, kPlain, kBuildIterations); },
                   kPlainKeyMessage},
        BundleCase{"CreatedWithAPlainKeyBagAndWithoutMac",
                   [](const Issued& ca, const fs::path&) { return create_bundle(ca, kPlain, -1); }, kNoMacMessage},
        BundleCase{"AssembledWithoutMac",
                   [](const Issued& ca, const fs::path&) {
                     return assemble_bundle(ca, {NID_aes_256_cbc, NID_aes_256_cbc, kPlain, false});
                   },
                   kNoMacMessage},
        BundleCase{"AssembledWithAPlainKeyBag",
                   [](const Issued& ca, const fs::path&) {
                     return assemble_bundle(ca, {NID_aes_256_cbc, kPlain, kPlain, true});
                   },
                   kPlainKeyMessage},
        BundleCase{"OpensslNomac", [](const Issued& ca, const fs::path& dir) { return openssl_export(ca, dir, "-nomac"); },
                   kNoMacMessage},
        BundleCase{"OpensslKeypbeNone",
                   [](const Issued& ca, const fs::path& dir) { return openssl_export(ca, dir, "-keypbe NONE"); },
                   kPlainKeyMessage},
        BundleCase{"OpensslNomacKeypbeNone",
                   [](const Issued& ca, const fs::path& dir) { return openssl_export(ca, dir, "-nomac -keypbe NONE"); },
                   kNoMacMessage}),
    case_name);

// What is refused above differs only in what is refused: these open, and only with their password.
// Certificates in a plain safe are fine (public, and covered by the MAC): Dogtag's PKCS12Util writes
// them so by default, and `openssl pkcs12 -export -certpbe NONE` too.
TEST_P(AcceptedBundleTest, OpensWithItsPasswordOnly) {
  auto read = read_pkcs12_file(file_, kPassword);
  ASSERT_TRUE(read) << read.error().message;
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].friendly_name, kName);
  EXPECT_EQ(X509_cmp((*read)[0].cert.get(), ca_.cert.get()), 0);
  ASSERT_TRUE((*read)[0].has_key);
  EXPECT_EQ(EVP_PKEY_eq((*read)[0].key.get(), ca_.key.get()), 1);

  auto wrong = read_pkcs12_file(file_, "not the password");
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(ErrorCode::unauthorized));
  EXPECT_EQ(wrong.error().message, file_.string() + ": wrong password or damaged file");
}

INSTANTIATE_TEST_SUITE_P(
    Pkcs12, AcceptedBundleTest,
    ::testing::Values(
        BundleCase{"OursFromEncodePkcs12", [](const Issued& ca, const fs::path&) { return our_bundle(ca); }, ""},
        BundleCase{"OpensslDefaults", [](const Issued& ca, const fs::path& dir) { return openssl_export(ca, dir, ""); },
                   ""},
        BundleCase{"OpensslCertpbeNone",
                   [](const Issued& ca, const fs::path& dir) { return openssl_export(ca, dir, "-certpbe NONE"); }, ""},
        BundleCase{"AssembledWithCertificatesInAPlainSafe",
                   [](const Issued& ca, const fs::path&) {
                     return assemble_bundle(ca, {kPlain, NID_aes_256_cbc, kPlain, true});
                   },
                   ""}),
    case_name);

// A keyBag inside an encrypted safe is seen only once the safe is decrypted, after the MAC: the
// right password finds it and refuses it; a wrong one stops at the MAC.
TEST_F(Pkcs12BundleTest, PlainKeyBagInsideAnEncryptedSafeIsRefusedOnceDecrypted) {
  TempDir dir("p12");
  auto der = assemble_bundle(ca_, {NID_aes_256_cbc, kPlain, NID_aes_256_cbc, true});
  ASSERT_FALSE(der.empty()) << ossl::drain_errors();
  ASSERT_TRUE(write_pkcs12_file(dir / "b.p12", der, false));

  auto right = read_pkcs12_file(dir / "b.p12", kPassword);
  ASSERT_FALSE(right);
  EXPECT_TRUE(right.error().is(ErrorCode::bad_request));
  EXPECT_EQ(right.error().message, fmt::format("{}: {}", (dir / "b.p12").string(), kPlainKeyMessage));

  auto wrong = read_pkcs12_file(dir / "b.p12", "not the password");
  ASSERT_FALSE(wrong);
  EXPECT_TRUE(wrong.error().is(ErrorCode::unauthorized));
}

// ---- The clone bundle from an instance folder ----

class CloneBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "certs");
    fs::create_directories(dir_ / "private");
    auto ca = make_self_signed_ca(KeyType::ec_p256, "CN=Clone CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    write("ca_signing", ca_);
    int serial = 2;
    for (std::string name : {"ocsp_signing", "subsystem", "audit_signing", "sslserver", "agent"}) {
      auto leaf = issue_leaf(ca_, "CN=" + name + ",O=Example", fmt::format("{:x}", serial++));
      ASSERT_TRUE(leaf) << leaf.error().message;
      write(name, *leaf);
      leaves_.push_back(std::move(*leaf));
    }
  }

  void write(const std::string& name, const Issued& issued) {
    ASSERT_TRUE(write_certificate_file(dir_ / ("certs/" + name + ".pem"), issued.cert.get()));
    ASSERT_TRUE(write_private_key_file(dir_ / ("private/" + name + ".key"), issued.key.get()));
  }

  // The instance's own subsystem certificate and key (leaves_[1]).
  const Issued& subsystem() const { return leaves_[1]; }

  // A clone must not receive another instance's identity: neither the subsystem certificate nor
  // its key, under any name.
  void expect_no_subsystem_identity(const std::vector<Pkcs12Item>& items) const {
    for (const auto& i : items) {
      SCOPED_TRACE(i.friendly_name);
      EXPECT_EQ(i.friendly_name.find("subsystem"), std::string::npos);
      EXPECT_NE(X509_cmp(i.cert.get(), subsystem().cert.get()), 0);
      if (i.key) {
        EXPECT_NE(EVP_PKEY_eq(i.key.get(), subsystem().key.get()), 1);
      }
    }
  }

  TempDir dir_{"clone-src"};
  Issued ca_;
  std::vector<Issued> leaves_;
};

TEST_F(CloneBundleTest, DogtagNicknamesAndTrustNoTlsSubsystemOrAgentCertificate) {
  auto items = collect_clone_bundle({dir_.path(), "pki-tomcat", true});
  ASSERT_TRUE(items) << items.error().message;
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& i : *items) {
    EXPECT_TRUE(i.key) << i.friendly_name;
    got.emplace_back(i.friendly_name, i.trust_flags);
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::string, std::string>>{
                     {"caSigningCert cert-pki-tomcat CA", "CTu,Cu,Cu"},
                     {"ocspSigningCert cert-pki-tomcat CA", "u,u,u"},
                     {"auditSigningCert cert-pki-tomcat CA", "u,u,Pu"},
                 }));
  EXPECT_EQ(X509_cmp((*items)[0].cert.get(), ca_.cert.get()), 0);
  expect_no_subsystem_identity(*items);

  // Nor does the written bundle hold it.
  auto der = encode_pkcs12(*items, kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  auto back = decode_pkcs12(*der, kPassword);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 3u);
  for (const auto& c : *back) {
    SCOPED_TRACE(c.friendly_name);
    EXPECT_NE(X509_cmp(c.cert.get(), subsystem().cert.get()), 0);
    ASSERT_TRUE(c.key);
    EXPECT_NE(EVP_PKEY_eq(c.key.get(), subsystem().key.get()), 1);
  }
}

TEST_F(CloneBundleTest, NoKeyDropsKeysAndTheUserTrustFlag) {
  // Without keys, the key files are not even read.
  fs::remove(dir_ / "private/ocsp_signing.key");
  auto items = collect_clone_bundle({dir_.path(), "demo", false});
  ASSERT_TRUE(items) << items.error().message;
  ASSERT_EQ(items->size(), 3u);
  for (const auto& i : *items) EXPECT_FALSE(i.key) << i.friendly_name;
  EXPECT_EQ((*items)[0].friendly_name, "caSigningCert cert-demo CA");
  EXPECT_EQ((*items)[0].trust_flags, "CT,C,C");
  EXPECT_EQ((*items)[1].trust_flags, ",,");
  EXPECT_EQ((*items)[2].friendly_name, "auditSigningCert cert-demo CA");
  EXPECT_EQ((*items)[2].trust_flags, ",,P");
  EXPECT_EQ(without_user_flag("CTu,Cu,Cu"), "CT,C,C");
  expect_no_subsystem_identity(*items);
}

TEST_F(CloneBundleTest, KraCertificatesAndTheCaChainWhenPresent) {
  auto storage = issue_leaf(ca_, "CN=DRM Storage Certificate,O=Example", "70");
  auto transport = issue_leaf(ca_, "CN=DRM Transport Certificate,O=Example", "71");
  ASSERT_TRUE(storage && transport);
  write("kra_storage", *storage);
  write("kra_transport", *transport);
  auto root = make_self_signed_ca(KeyType::ec_p256, "CN=Root CA,O=Example");
  ASSERT_TRUE(root) << root.error().message;
  // The chain file repeats the CA itself (as chain files often do): it is not added twice.
  write_file(dir_ / "certs/ca_chain.pem",
             certificate_to_pem(ca_.cert.get()) + certificate_to_pem(root->cert.get()));

  auto items = collect_clone_bundle({dir_.path(), "demo", true});
  ASSERT_TRUE(items) << items.error().message;
  std::vector<std::string> names;
  for (const auto& i : *items) names.push_back(i.friendly_name);
  EXPECT_EQ(names, (std::vector<std::string>{"caSigningCert cert-demo CA", "ocspSigningCert cert-demo CA",
                                             "auditSigningCert cert-demo CA", "storageCert cert-demo KRA",
                                             "transportCert cert-demo KRA", "CN=Root CA,O=Example"}));
  ASSERT_EQ(items->size(), 6u);
  EXPECT_TRUE((*items)[3].key);
  EXPECT_TRUE((*items)[4].key);
  EXPECT_EQ((*items)[5].trust_flags, "CT,C,C");
  EXPECT_FALSE((*items)[5].key);
  expect_no_subsystem_identity(*items);

  auto der = encode_pkcs12(*items, kPassword, kFast);
  ASSERT_TRUE(der) << der.error().message;
  auto back = decode_pkcs12(*der, kPassword);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->size(), 6u);
  EXPECT_TRUE((*back)[4].has_key);
  EXPECT_FALSE((*back)[5].has_key);
}

TEST_F(CloneBundleTest, MissingOrMismatchedFilesAreNamed) {
  // The instance's own subsystem certificate is none of the bundle's business: not even read.
  fs::remove(dir_ / "certs/subsystem.pem");
  fs::remove(dir_ / "private/subsystem.key");
  auto without_subsystem = collect_clone_bundle({dir_.path(), "demo", true});
  ASSERT_TRUE(without_subsystem) << without_subsystem.error().message;
  EXPECT_EQ(without_subsystem->size(), 3u);

  fs::rename(dir_ / "private/audit_signing.key", dir_ / "audit_signing.key.bak");
  auto missing = collect_clone_bundle({dir_.path(), "demo", true});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(ErrorCode::not_found));
  EXPECT_NE(missing.error().message.find("audit_signing.key"), std::string::npos) << missing.error().message;

  // The OCSP signing key in place of the audit signing key.
  fs::copy_file(dir_ / "private/ocsp_signing.key", dir_ / "private/audit_signing.key");
  auto mismatched = collect_clone_bundle({dir_.path(), "demo", true});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message.find("is not the key of"), std::string::npos) << mismatched.error().message;

  auto not_an_instance = collect_clone_bundle({dir_ / "nothing-here", "demo", true});
  ASSERT_FALSE(not_an_instance);
  EXPECT_TRUE(not_an_instance.error().is(ErrorCode::not_found));
}

}  // namespace
}  // namespace ca::crypto
