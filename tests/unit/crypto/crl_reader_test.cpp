// read_crl against build_crl (round trips, a million entries), against `openssl ca -gencrl`, and
// against malformed input: hand-built CRLs with one wrong piece, every truncation, header flips.
#include "crypto/crl_reader.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/openssl_owners.hpp"
#include "crypto/der_reader.hpp"
#include "crypto/der_writer.hpp"
#include "crypto_test_support.hpp"
#include "support/temp_dir.hpp"

namespace ca::crypto {
namespace {

using Bytes = std::vector<uint8_t>;
using std::chrono::system_clock;

constexpr int64_t kJan2024 = 1704067200;  // 2024-01-01T00:00:00Z

system_clock::time_point at(int64_t seconds) { return system_clock::from_time_t(static_cast<std::time_t>(seconds)); }

std::string hex(std::span<const uint8_t> bytes) {
  std::string text;
  for (uint8_t b : bytes) text += fmt::format("{:02X}", b);
  return text;
}

::testing::AssertionResult same_entries(const std::vector<CrlEntry>& expected, const std::vector<CrlEntry>& actual) {
  if (expected.size() != actual.size())
    return ::testing::AssertionFailure() << "expected " << expected.size() << " entries, read " << actual.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const CrlEntry &e = expected[i], &a = actual[i];
    if (!e.same_serial(a) || e.reason != a.reason || e.revoked_at != a.revoked_at ||
        e.invalidity_date != a.invalidity_date)
      return ::testing::AssertionFailure()
             << "entry " << i << ": expected " << hex(e.serial_bytes()) << " reason " << int(e.reason) << " at "
             << e.revoked_at << " invalid since " << e.invalidity_date << ", read " << hex(a.serial_bytes())
             << " reason " << int(a.reason) << " at " << a.revoked_at << " invalid since " << a.invalidity_date;
  }
  return ::testing::AssertionSuccess();
}

// ~`count` entries with serials of 1 to 20 octets, with and without the high bit (build_crl then
// adds a sign octet), the reasons a full or a delta CRL carries, some invalidity dates, and dates
// on both sides of the UTCTime/GeneralizedTime switch of 2050 and of the 19YY/20YY one of 1950.
std::vector<CrlEntry> varied_entries(std::size_t count, bool delta) {
  std::mt19937_64 random(20240101);
  const uint8_t reasons[] = {0, 1, 6, static_cast<uint8_t>(delta ? 8 : 4)};
  const int64_t dates[] = {kJan2024, -315619200 /* 1960 */, 2556144000 /* 2051 */, 946684799 /* 1999-12-31 */};
  std::vector<CrlEntry> entries;
  for (std::size_t i = 0; i < count; ++i) {
    CrlEntry entry;
    entry.serial_length = static_cast<uint8_t>(1 + i % 20);
    for (std::size_t j = 0; j < entry.serial_length; ++j) entry.serial[j] = static_cast<uint8_t>(random());
    // No leading zero octet: build_crl writes the minimal INTEGER, so it would not come back.
    entry.serial[0] = (i / 20) % 2 ? (entry.serial[0] | 0x80) : ((entry.serial[0] & 0x7f) | 0x01);
    entry.reason = reasons[i % 4];
    entry.revoked_at = dates[i % 4] + static_cast<int64_t>(i);
    entry.invalidity_date = i % 3 == 0 ? dates[(i + 1) % 4] - 86400 : 0;
    entries.push_back(entry);
  }
  return entries;
}

// What OpenSSL's own parser sees in a CRL, in read_crl's terms: the oracle for the comparisons.
int64_t openssl_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (!time || ASN1_TIME_to_tm(time, &tm) != 1) return -1;
  return timegm(&tm);
}

std::optional<uint64_t> openssl_integer_extension(const X509_CRL* crl, int nid) {
  ossl::UniquePtr<ASN1_STRING> value(static_cast<ASN1_STRING*>(X509_CRL_get_ext_d2i(crl, nid, nullptr, nullptr)));
  uint64_t number = 0;
  if (!value || ASN1_INTEGER_get_uint64(&number, value.get()) != 1) return std::nullopt;
  return number;
}

std::optional<CrlContents> openssl_view(const Bytes& der) {
  const unsigned char* p = der.data();
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl) return std::nullopt;
  CrlContents view;
  view.number = openssl_integer_extension(crl.get(), NID_crl_number).value_or(0);
  view.delta_base = openssl_integer_extension(crl.get(), NID_delta_crl);
  view.this_update = openssl_time(X509_CRL_get0_lastUpdate(crl.get()));
  view.next_update = X509_CRL_get0_nextUpdate(crl.get()) ? openssl_time(X509_CRL_get0_nextUpdate(crl.get())) : 0;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    const ASN1_INTEGER* serial = X509_REVOKED_get0_serialNumber(r);
    CrlEntry entry;
    entry.serial_length = static_cast<uint8_t>(ASN1_STRING_length(serial));
    std::copy_n(ASN1_STRING_get0_data(serial), entry.serial_length, entry.serial.begin());
    entry.revoked_at = openssl_time(X509_REVOKED_get0_revocationDate(r));
    ossl::UniquePtr<ASN1_STRING> reason(
        static_cast<ASN1_STRING*>(X509_REVOKED_get_ext_d2i(r, NID_crl_reason, nullptr, nullptr)));
    if (reason) entry.reason = static_cast<uint8_t>(ASN1_ENUMERATED_get(reason.get()));
    ossl::UniquePtr<ASN1_STRING> invalidity(
        static_cast<ASN1_STRING*>(X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, nullptr, nullptr)));
    if (invalidity) entry.invalidity_date = openssl_time(invalidity.get());
    view.entries.push_back(entry);
  }
  return view;
}

class CrlReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto issued = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=CRL Reader CA,O=Example");
    ASSERT_TRUE(issued) << issued.error().message;
    ca = std::move(*issued);
  }
  Bytes build(const CrlParams& params, const std::vector<CrlEntry>& entries) {
    auto der = build_crl(fixtures::issuer_of(ca.cert.get(), ca.key.get()).value(), params, entries);
    EXPECT_TRUE(der) << der.error().message;
    return der ? *der : Bytes{};
  }
  fixtures::Issued ca;
};

TEST_F(CrlReaderTest, FullCrlRoundTrips) {
  const auto entries = varied_entries(1000, false);
  const Bytes der = build({7, std::nullopt, at(kJan2024), at(kJan2024 + 7 * 86400)}, entries);
  auto crl = read_crl(der);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_EQ(crl->number, 7u);
  EXPECT_FALSE(crl->delta_base);
  EXPECT_EQ(crl->this_update, kJan2024);
  EXPECT_EQ(crl->next_update, kJan2024 + 7 * 86400);
  EXPECT_TRUE(same_entries(entries, crl->entries));
  auto openssl = openssl_view(der);
  ASSERT_TRUE(openssl);
  EXPECT_TRUE(same_entries(openssl->entries, crl->entries));
}

TEST_F(CrlReaderTest, DeltaCrlRoundTripsWithLargeNumbersAndGeneralizedTimes) {
  const auto entries = varied_entries(1000, true);
  const uint64_t number = 0x0000100100000005, base = 0x0000100100000004;
  const int64_t next_update = 2840140800;  // 2060-01-01: GeneralizedTime
  const Bytes der = build({number, base, at(kJan2024), at(next_update)}, entries);
  auto crl = read_crl(der);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_EQ(crl->number, number);
  EXPECT_EQ(crl->delta_base, base);
  EXPECT_EQ(crl->this_update, kJan2024);
  EXPECT_EQ(crl->next_update, next_update);
  EXPECT_TRUE(same_entries(entries, crl->entries));
  EXPECT_EQ(std::count_if(crl->entries.begin(), crl->entries.end(), [](const CrlEntry& e) { return e.reason == 8; }), 250);
}

TEST_F(CrlReaderTest, EmptyCrlHasNoEntries) {
  auto crl = read_crl(build({1, std::nullopt, at(kJan2024), at(kJan2024 + 3600)}, {}));
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_EQ(crl->number, 1u);
  EXPECT_TRUE(crl->entries.empty());
}

TEST_F(CrlReaderTest, ChecksTheSignatureOnlyWhenAsked) {
  const Bytes der = build({3, std::nullopt, at(kJan2024), at(kJan2024 + 3600)}, varied_entries(10, false));
  EXPECT_TRUE(crl_signed_by(der, ca.cert.get()));
  auto other = fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=CRL Reader CA,O=Example");
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_FALSE(crl_signed_by(der, other->cert.get()));
  Bytes altered = der;
  const std::string_view name = "Reader";
  auto in_issuer = std::search(altered.begin(), altered.end(), name.begin(), name.end());
  ASSERT_NE(in_issuer, altered.end());
  *in_issuer = 'r';  // the issuer name: still readable, no longer signed
  EXPECT_TRUE(read_crl(altered));
  EXPECT_FALSE(crl_signed_by(altered, ca.cert.get()));
  EXPECT_FALSE(crl_signed_by(Bytes(der.begin(), der.end() - 1), ca.cert.get()));
}

TEST(CrlReaderSignatureTest, VerifiesRsaAndEd25519) {
  for (KeyType type : {KeyType::rsa_2048, KeyType::ed25519, KeyType::ec_p384}) {
    SCOPED_TRACE(fixtures::test_name(type));
    auto issued = fixtures::make_self_signed_ca(type);
    ASSERT_TRUE(issued) << issued.error().message;
    auto der = build_crl(fixtures::issuer_of(issued->cert.get(), issued->key.get()).value(), {1, std::nullopt, at(kJan2024), at(kJan2024 + 60)},
                         varied_entries(3, false));
    ASSERT_TRUE(der) << der.error().message;
    EXPECT_TRUE(crl_signed_by(*der, issued->cert.get()));
    EXPECT_TRUE(read_crl(*der));
  }
}

// A CRL from the openssl command line, with the entry extensions it writes (reasons, an invalidity
// date from "keyTime"), a CRL Number from its file and an Authority Key Identifier read_crl skips.
TEST(CrlReaderOpensslTest, ReadsWhatOpensslCaGenerates) {
  testing::TempDir dir("ca-crlread");
  auto made = testing::shell(fmt::format(
      "cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=Gencrl CA' "
      "-keyout ca.key -out ca.pem",
      dir.path().string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // status, expiry, revocation[,reason[,argument]], serial, file, subject
  testing::write_file(dir / "index.txt",
                      "R\t491231235959Z\t240301120000Z,keyCompromise\t0A1B\tunknown\t/CN=a\n"
                      "R\t491231235959Z\t240302120000Z\t80FF01\tunknown\t/CN=b\n"
                      "R\t491231235959Z\t240303120000Z,certificateHold,holdInstructionReject\t"
                      "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\tunknown\t/CN=c\n"
                      "R\t491231235959Z\t240304120000Z,keyTime,20240201000000Z\t01\tunknown\t/CN=d\n"
                      "R\t491231235959Z\t240305120000Z,superseded\tFF00FF00FF00FF00FF00FF00FF00FF00FF00FF00\tunknown\t/CN=e\n"
                      "R\t491231235959Z\t240306120000Z,unspecified\t1234\tunknown\t/CN=f\n"
                      "V\t491231235959Z\t\t02\tunknown\t/CN=valid\n");
  testing::write_file(dir / "crlnumber", "1000\n");
  testing::write_file(dir / "ca.cnf",
                      "[ca]\ndefault_ca = gencrl\n"
                      "[gencrl]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n"
                      "[crl_ext]\nauthorityKeyIdentifier = keyid:always\n");
  auto generated = testing::shell(fmt::format(
      "cd {} && openssl ca -config ca.cnf -gencrl -crlexts crl_ext -keyfile ca.key -cert ca.pem -out crl.pem"
      " && openssl crl -in crl.pem -outform DER -out crl.der",
      dir.path().string()));
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  const std::string file = testing::read_file(dir / "crl.der");
  const Bytes der(file.begin(), file.end());

  auto crl = read_crl(der);
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_EQ(crl->number, 0x1000u);
  EXPECT_FALSE(crl->delta_base);
  EXPECT_EQ(crl->next_update - crl->this_update, 30 * 86400);
  const int64_t march_1 = 1709294400;  // 2024-03-01T12:00:00Z
  std::vector<CrlEntry> expected{
      *CrlEntry::from_hex("0A1B", march_1, 1),
      *CrlEntry::from_hex("80FF01", march_1 + 86400, 0),
      *CrlEntry::from_hex("7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", march_1 + 2 * 86400, 6),
      *CrlEntry::from_hex("01", march_1 + 3 * 86400, 1, 1706745600 /* 2024-02-01 */),
      *CrlEntry::from_hex("FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00", march_1 + 4 * 86400, 4),
      *CrlEntry::from_hex("1234", march_1 + 5 * 86400, 0),
  };
  std::sort(expected.begin(), expected.end());  // openssl ca sorts its entries by serial
  EXPECT_TRUE(same_entries(expected, crl->entries));

  auto openssl = openssl_view(der);
  ASSERT_TRUE(openssl);
  EXPECT_EQ(crl->this_update, openssl->this_update);
  EXPECT_EQ(crl->next_update, openssl->next_update);
  EXPECT_TRUE(same_entries(openssl->entries, crl->entries));
  auto text = testing::shell(fmt::format("openssl crl -in {} -noout -text", (dir / "crl.pem").string())).output;
  EXPECT_NE(text.find("Authority Key Identifier"), std::string::npos) << text;  // skipped, not refused

  FILE* pem = fopen((dir / "ca.pem").c_str(), "r");
  ASSERT_TRUE(pem);
  ossl::UniquePtr<X509> issuer(PEM_read_X509(pem, nullptr, nullptr, nullptr));
  fclose(pem);
  ASSERT_TRUE(issuer);
  EXPECT_TRUE(crl_signed_by(der, issuer.get()));
}

// Hand-built CRLs: each case changes one piece of a valid one. The signature is a placeholder,
// which read_crl does not look at.
Bytes tlv(uint8_t tag, const Bytes& content) {
  Bytes out{tag};
  DerWriter::append_length(out, content.size());
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

Bytes text_value(uint8_t tag, std::string_view text) { return tlv(tag, Bytes(text.begin(), text.end())); }

const Bytes kEcdsaSha256 = tlv(0x30, {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02});
const Bytes kSerial = {0x02, 0x02, 0x00, 0x80};
const Bytes kRevoked = text_value(0x17, "240301120000Z");
const Bytes kCrlNumberOid = {0x06, 0x03, 0x55, 0x1d, 0x14};
const Bytes kReasonOid = {0x06, 0x03, 0x55, 0x1d, 0x15};
const Bytes kCritical = {0x01, 0x01, 0xff};

Bytes extension(const Bytes& oid, const Bytes& value_der, bool critical = false) {
  return tlv(0x30, cat({oid, critical ? kCritical : Bytes{}, tlv(0x04, value_der)}));
}
Bytes reason(uint8_t code) { return extension(kReasonOid, {0x0a, 0x01, code}); }
Bytes entry(const Bytes& serial, const Bytes& extensions = {}) {
  return tlv(0x30, cat({serial, kRevoked, extensions.empty() ? Bytes{} : tlv(0x30, extensions)}));
}

struct CrlPieces {
  Bytes version = {0x02, 0x01, 0x01};
  Bytes inner_algorithm = kEcdsaSha256;
  Bytes issuer = tlv(0x30, {});
  Bytes this_update = text_value(0x17, "240101000000Z");
  Bytes next_update = text_value(0x18, "20240201000000Z");
  Bytes entries = cat({entry(kSerial, reason(1)), entry({0x02, 0x01, 0x05})});  // revokedCertificates content
  Bytes extensions = extension(kCrlNumberOid, {0x02, 0x01, 0x2a});               // content of Extensions
  Bytes tbs_tail;                                                                 // stray bytes ending tbsCertList
  Bytes signature = {0x03, 0x03, 0x00, 0x01, 0x02};
  Bytes after;                                                                    // stray bytes after the CRL
};

Bytes assemble(const CrlPieces& p) {
  Bytes tbs = tlv(0x30, cat({p.version, p.inner_algorithm, p.issuer, p.this_update, p.next_update,
                             p.entries.empty() ? Bytes{} : tlv(0x30, p.entries),
                             p.extensions.empty() ? Bytes{} : tlv(0xa0, tlv(0x30, p.extensions)), p.tbs_tail}));
  return cat({tlv(0x30, cat({tbs, kEcdsaSha256, p.signature})), p.after});
}

TEST(CrlReaderPiecesTest, ReadsTheValidBaseCase) {
  auto crl = read_crl(assemble({}));
  ASSERT_TRUE(crl) << crl.error().message;
  EXPECT_EQ(crl->number, 42u);
  EXPECT_EQ(crl->this_update, kJan2024);
  EXPECT_EQ(crl->next_update, 1706745600);
  ASSERT_EQ(crl->entries.size(), 2u);
  EXPECT_EQ(hex(crl->entries[0].serial_bytes()), "80");
  EXPECT_EQ(crl->entries[0].reason, 1);
  EXPECT_EQ(crl->entries[0].revoked_at, 1709294400);
  EXPECT_EQ(hex(crl->entries[1].serial_bytes()), "05");
  EXPECT_EQ(crl->entries[1].reason, 0);
}

TEST(CrlReaderPiecesTest, AcceptsWhatRfc5280LeavesOptional) {
  struct Case {
    const char* name;
    CrlPieces pieces;
  };
  Case cases[] = {{"v1: no version, no extensions", {}}, {"no nextUpdate", {}}, {"no entries", {}},
                  {"unknown non-critical extensions", {}}, {"20-octet serial with its sign octet", {}}};
  cases[0].pieces.version.clear();
  cases[0].pieces.extensions.clear();
  cases[1].pieces.next_update.clear();
  cases[2].pieces.entries.clear();
  const Bytes issuing_distribution_point_oid = {0x06, 0x03, 0x55, 0x1d, 0x1c};
  const Bytes certificate_issuer_oid = {0x06, 0x03, 0x55, 0x1d, 0x1d};
  cases[3].pieces.extensions =
      cat({cases[3].pieces.extensions, extension(issuing_distribution_point_oid, tlv(0x30, {}))});
  cases[3].pieces.entries = entry(kSerial, extension(certificate_issuer_oid, tlv(0x30, {})));
  Bytes serial20{0x02, 0x15, 0x00};
  serial20.insert(serial20.end(), 20, 0xff);
  cases[4].pieces.entries = entry(serial20);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto crl = read_crl(assemble(c.pieces));
    EXPECT_TRUE(crl) << crl.error().message;
  }
}

TEST(CrlReaderPiecesTest, RefusesMalformedPiecesWithAPreciseMessage) {
  struct Case {
    const char* name;
    CrlPieces pieces;
    const char* message;
  };
  Case cases[] = {
      {"negative serial", {}, "userCertificate at byte 57: negative INTEGER"},
      {"21-octet serial", {}, "serial of 21 octets, more than 20"},
      {"serial with a superfluous zero", {}, "superfluous leading zero"},
      {"serial not an INTEGER", {}, "userCertificate at byte 57: expected INTEGER (0x02), found tag 0x04"},
      {"CRL number beyond 64 bits", {}, "CRL Number at byte"},
      {"unknown critical CRL extension", {}, "unknown critical extension 2.5.29.28"},
      {"unknown critical entry extension", {}, "unknown critical extension 2.5.29.29"},
      {"reason code twice", {}, "extension 2.5.29.21 appears twice"},
      {"reason code 7", {}, "not an RFC 5280 CRLReason"},
      {"empty entry extensions", {}, "crlEntryExtensions at byte"},
      {"extra field in an entry", {}, "revoked certificate at byte"},
      {"stray bytes in tbsCertList", {}, "tbsCertList at byte"},
      {"trailing garbage", {}, "CertificateList at byte"},
      {"version v3", {}, "version at byte 5: 2 is not v2 (1)"},
      {"inner algorithm differs", {}, "differs from the signatureAlgorithm"},
      {"no thisUpdate", {}, "thisUpdate at byte"},
      {"bad invalidity date", {}, "invalidityDate at byte"},
      {"critical FALSE written out", {}, "DER leaves out the default FALSE"},
      {"signature with unused bits", {}, "BIT STRING without whole octets"},
  };
  std::size_t i = 0;
  cases[i++].pieces.entries = entry({0x02, 0x01, 0x80});
  Bytes serial21{0x02, 0x15};
  serial21.insert(serial21.end(), 21, 0x01);
  cases[i++].pieces.entries = entry(serial21);
  cases[i++].pieces.entries = entry({0x02, 0x02, 0x00, 0x01});
  cases[i++].pieces.entries = entry({0x04, 0x01, 0x01});
  cases[i++].pieces.extensions = extension(kCrlNumberOid, {0x02, 0x09, 0x01, 0, 0, 0, 0, 0, 0, 0, 0});
  cases[i++].pieces.extensions = extension({0x06, 0x03, 0x55, 0x1d, 0x1c}, tlv(0x30, {}), true);
  cases[i++].pieces.entries = entry(kSerial, extension({0x06, 0x03, 0x55, 0x1d, 0x1d}, tlv(0x30, {}), true));
  cases[i++].pieces.entries = entry(kSerial, cat({reason(1), reason(1)}));
  cases[i++].pieces.entries = entry(kSerial, reason(7));
  cases[i++].pieces.entries = tlv(0x30, cat({kSerial, kRevoked, tlv(0x30, {})}));
  cases[i++].pieces.entries = tlv(0x30, cat({kSerial, kRevoked, tlv(0x30, reason(1)), {0x05, 0x00}}));
  cases[i++].pieces.tbs_tail = {0x02, 0x01, 0x00};
  cases[i++].pieces.after = {0x00};
  cases[i++].pieces.version = {0x02, 0x01, 0x02};
  cases[i++].pieces.inner_algorithm = tlv(0x30, {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03});
  cases[i].pieces.this_update.clear();
  cases[i++].pieces.next_update.clear();
  cases[i++].pieces.entries =
      entry(kSerial, extension({0x06, 0x03, 0x55, 0x1d, 0x18}, text_value(0x17, "240101000000Z")));
  cases[i++].pieces.extensions = tlv(0x30, cat({kCrlNumberOid, {0x01, 0x01, 0x00}, tlv(0x04, {0x02, 0x01, 0x01})}));
  cases[i++].pieces.signature = {0x03, 0x02, 0x01, 0x80};
  ASSERT_EQ(i, std::size(cases));
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto crl = read_crl(assemble(c.pieces));
    ASSERT_FALSE(crl);
    EXPECT_TRUE(crl.error().is(ErrorCode::bad_request));
    EXPECT_NE(crl.error().message.find(c.message), std::string::npos) << crl.error().message;
  }
}

TEST_F(CrlReaderTest, EveryTruncationIsAnError) {
  const auto entries = varied_entries(6, true);
  const Bytes der = build({5, 4, at(kJan2024), at(kJan2024 + 3600)}, entries);
  ASSERT_TRUE(read_crl(der));
  for (std::size_t length = 0; length < der.size(); ++length) {
    // A copy of exactly the prefix's size, so that the sanitizer build sees any over-read.
    const Bytes prefix(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(length));
    auto crl = read_crl(prefix);
    if (crl) {
      ADD_FAILURE() << "a prefix of " << length << " of " << der.size() << " bytes was read";
    } else {
      EXPECT_TRUE(crl.error().is(ErrorCode::bad_request));
    }
  }
}

// The offsets of the tag of every value on the path CertificateList -> tbsCertList ->
// revokedCertificates -> first entry -> its serial, revocation date and extensions -> first extension.
std::vector<std::size_t> header_path(const Bytes& der) {
  std::vector<std::size_t> tags;
  DerReader input(der);
  auto list = input.read(0x30, "list");
  tags.push_back(list->offset);
  DerReader parts = DerReader::inside(*list);
  auto tbs = parts.read(0x30, "tbs");
  tags.push_back(tbs->offset);
  DerReader fields = DerReader::inside(*tbs);
  for (int i = 0; i < 5; ++i) tags.push_back(fields.read_any("field")->offset);  // version .. nextUpdate
  auto revoked = fields.read(0x30, "revoked");
  tags.push_back(revoked->offset);
  tags.push_back(fields.read(0xa0, "extensions")->offset);
  DerReader list_of_entries = DerReader::inside(*revoked);
  auto first = list_of_entries.read(0x30, "entry");
  tags.push_back(first->offset);
  DerReader entry_fields = DerReader::inside(*first);
  tags.push_back(entry_fields.read_any("serial")->offset);
  tags.push_back(entry_fields.read_any("date")->offset);
  auto extensions = entry_fields.read(0x30, "extensions");
  tags.push_back(extensions->offset);
  tags.push_back(DerReader::inside(*extensions).read(0x30, "extension")->offset);
  return tags;
}

TEST_F(CrlReaderTest, FlippedTagsAndLengthsAreErrors) {
  std::vector<CrlEntry> entries{*CrlEntry::from_hex("0A1B2C", kJan2024, 1, kJan2024 - 86400),
                                *CrlEntry::from_hex("01", kJan2024 + 1, 0)};
  const Bytes der = build({5, std::nullopt, at(kJan2024), at(kJan2024 + 3600)}, entries);
  ASSERT_TRUE(read_crl(der));
  for (std::size_t tag_at : header_path(der)) {
    const std::size_t length_at = tag_at + 1;
    const uint8_t tag = der[tag_at], length = der[length_at];
    const std::pair<std::size_t, uint8_t> flips[] = {
        {tag_at, static_cast<uint8_t>(tag ^ 0x01)},  {tag_at, static_cast<uint8_t>(tag ^ 0x20)},
        {tag_at, static_cast<uint8_t>(tag ^ 0x80)},  {tag_at, 0x1f},
        {length_at, static_cast<uint8_t>(length + 1)}, {length_at, static_cast<uint8_t>(length - 1)},
        {length_at, 0x80},                            {length_at, 0x84},
        {length_at, 0xff},
    };
    for (const auto& [where, value] : flips) {
      if (der[where] == value) continue;
      Bytes altered = der;
      altered[where] = value;
      auto crl = read_crl(altered);
      if (crl) {
        ADD_FAILURE() << fmt::format("byte {} (0x{:02x} -> 0x{:02x}) was accepted", where, der[where], value);
      } else {
        EXPECT_TRUE(crl.error().is(ErrorCode::bad_request));
      }
    }
  }
}

// Any byte at any place: an answer, never a crash or an over-read (run under CA_SANITIZE=address).
TEST_F(CrlReaderTest, AnySingleByteChangeIsAnsweredWithoutACrash) {
  const Bytes der = build({5, 4, at(kJan2024), at(kJan2024 + 3600)}, varied_entries(4, true));
  std::size_t refused = 0;
  for (std::size_t where = 0; where < der.size(); ++where) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0x80}, uint8_t{0xff}, static_cast<uint8_t>(der[where] ^ 0x01)}) {
      Bytes altered = der;
      altered[where] = value;
      if (!read_crl(altered)) ++refused;
    }
  }
  EXPECT_GT(refused, der.size());
}

// Several bytes at once, and cut short: the same, on 5,000 deterministic random damages.
TEST_F(CrlReaderTest, RandomDamageIsAnsweredWithoutACrash) {
  const Bytes der = build({5, 4, at(kJan2024), at(kJan2024 + 3600)}, varied_entries(8, true));
  std::mt19937 random(7);
  std::size_t refused = 0;
  for (int round = 0; round < 5000; ++round) {
    Bytes damaged = der;
    for (uint32_t changes = 1 + random() % 4; changes > 0; --changes)
      damaged[random() % damaged.size()] = static_cast<uint8_t>(random());
    if (round % 2) damaged.resize(random() % damaged.size());
    if (!read_crl(damaged)) ++refused;
  }
  EXPECT_GT(refused, 2500u);  // at least every truncated one
}

TEST_F(CrlReaderTest, ReadsAMillionEntries) {
  // Entries like bench/crl_bench.cpp's (a real CA's): 127-bit random serials, reasons mixed,
  // keyCompromise with an invalidity date half of the time; ~46.7 bytes of DER each.
  constexpr std::size_t kCount = 1'000'000;
  std::mt19937_64 random(1);
  std::vector<CrlEntry> entries(kCount);
  for (CrlEntry& entry : entries) {
    for (std::size_t i = 0; i < 16; i += 8) {
      const uint64_t bits = random();
      for (std::size_t j = 0; j < 8; ++j) entry.serial[i + j] = static_cast<uint8_t>(bits >> (8 * j));
    }
    entry.serial[0] = static_cast<uint8_t>((entry.serial[0] & 0x7f) | 0x01);
    entry.serial_length = 16;
    entry.revoked_at = kJan2024 - static_cast<int64_t>(random() % (365 * 86400));
    const uint64_t pick = random() % 100;
    entry.reason = pick < 30 ? 0 : pick < 45 ? 1 : pick < 47 ? 2 : pick < 62 ? 3 : pick < 87 ? 4 : 5;
    if (entry.reason == 1 && random() % 2 == 0) entry.invalidity_date = entry.revoked_at - 86400;
  }
  const Bytes der = build({1234, std::nullopt, at(kJan2024), at(kJan2024 + 86400)}, entries);
  ASSERT_FALSE(der.empty());

  const auto start = std::chrono::steady_clock::now();
  auto crl = read_crl(der);
  const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(crl) << crl.error().message;
  std::printf("[ measured ] read_crl: %zu entries, %.1f MB of DER in %.1f ms\n", crl->entries.size(),
              static_cast<double>(der.size()) / 1e6, elapsed.count());
  EXPECT_EQ(crl->entries.size(), kCount);
  EXPECT_EQ(crl->number, 1234u);
  EXPECT_TRUE(same_entries(entries, crl->entries));
}

}  // namespace
}  // namespace ca::crypto
