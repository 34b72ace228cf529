#include "crypto/crl_builder.hpp"

#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "core/openssl_owners.hpp"
#include "core/time_text.hpp"
#include "crypto/der_writer.hpp"

namespace ca::crypto {

namespace {

// Precomputed entry extensions: the reasonCode extension for each reason code.
std::vector<uint8_t> reason_extension(int reason) {
  // SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED reason } }
  return {0x30, 0x0a, 0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, static_cast<uint8_t>(reason)};
}

void write_generalized(std::vector<uint8_t>& out, int64_t secs) {
  const std::string text =
      utc_text(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(secs)), kGeneralizedTime);
  out.insert(out.end(), text.begin(), text.end());
}

void write_time(DerWriter& w, int64_t secs) {
  w.time(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(secs)));
}

void extension(DerWriter& w, std::string_view oid, bool critical, const std::vector<uint8_t>& value) {
  auto m = w.begin(0x30);
  w.oid(oid);
  if (critical) w.boolean(true);
  w.octet_string(value);
  w.end(m);
}

std::vector<uint8_t> integer_der(uint64_t v) {
  DerWriter w;
  w.integer(v);
  return std::move(w.bytes());
}

// URIs are IA5String: ASCII only, and no spaces, as in the certificates we issue.
Status check_uri(std::string_view uri, std::string_view what) {
  for (char c : uri)
    if (c <= 0x20 || c > 0x7e)
      return fail(Error::bad_request(fmt::format("{} '{}' must be printable ASCII without spaces", what, uri)));
  return ok();
}

// distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] uri } }. The outer [0] tags
// the DistributionPointName CHOICE, so it is explicit; the inner ones are implicit.
void distribution_point_name(DerWriter& w, std::string_view uri) {
  auto point = w.begin(0xa0);
  auto full_name = w.begin(0xa0);
  auto name = w.begin(0x86);
  w.raw(uri);
  w.end(name);
  w.end(full_name);
  w.end(point);
}

// IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0] ... } with every other field absent:
// all kinds of certificates, all reasons, not indirect.
std::vector<uint8_t> issuing_distribution_point_der(std::string_view uri) {
  DerWriter w;
  auto idp = w.begin(0x30);
  distribution_point_name(w, uri);
  w.end(idp);
  return std::move(w.bytes());
}

// FreshestCRL ::= CRLDistributionPoints, a SEQUENCE OF DistributionPoint; here one of them.
std::vector<uint8_t> freshest_crl_der(std::string_view uri) {
  DerWriter w;
  auto points = w.begin(0x30);
  auto point = w.begin(0x30);
  distribution_point_name(w, uri);
  w.end(point);
  w.end(points);
  return std::move(w.bytes());
}

}  // namespace

std::optional<CrlEntry> CrlEntry::from_hex(std::string_view hex, int64_t revoked_at, int reason, int64_t invalidity) {
  while (hex.size() > 1 && hex.front() == '0') hex.remove_prefix(1);
  if (hex.empty() || hex.size() > 40) return std::nullopt;
  CrlEntry e;
  std::size_t bytes = (hex.size() + 1) / 2;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = 0, lo;
    if (i == 0 && hex.size() % 2 == 1) {
      lo = nibble(hex[pos++]);
    } else {
      hi = nibble(hex[pos++]);
      lo = nibble(hex[pos++]);
    }
    if (hi < 0 || lo < 0) return std::nullopt;
    e.serial[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  e.serial_length = static_cast<uint8_t>(bytes);
  e.reason = static_cast<uint8_t>(reason);
  e.revoked_at = revoked_at;
  e.invalidity_date = invalidity;
  return e;
}

bool CrlEntry::operator<(const CrlEntry& o) const {
  if (serial_length != o.serial_length) return serial_length < o.serial_length;
  return std::memcmp(serial.data(), o.serial.data(), serial_length) < 0;
}

bool CrlEntry::same_serial(const CrlEntry& o) const {
  return serial_length == o.serial_length && std::memcmp(serial.data(), o.serial.data(), serial_length) == 0;
}

Result<std::vector<uint8_t>> signature_algorithm_der(EVP_PKEY* key) {
  DerWriter w;
  auto m = w.begin(0x30);
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    int bits = EVP_PKEY_get_bits(key);
    w.oid(bits > 384 ? "1.2.840.10045.4.3.4" : bits > 256 ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.2");
  } else if (id == EVP_PKEY_RSA) {
    w.oid("1.2.840.113549.1.1.11");
    w.null();
  } else if (id == EVP_PKEY_ED25519) {
    w.oid("1.3.101.112");
  } else {
    return fail(Error::crypto(fmt::format("no CRL signature algorithm for key type {}", id)));
  }
  w.end(m);
  return std::move(w.bytes());
}

namespace {

Result<std::vector<uint8_t>> issuer_name_der(X509* issuer) {
  unsigned char* name_der = nullptr;
  int name_len = i2d_X509_NAME(X509_get_subject_name(issuer), &name_der);
  if (name_len <= 0) return fail(Error::crypto("cannot encode the issuer name"));
  std::vector<uint8_t> issuer_name(name_der, name_der + name_len);
  OPENSSL_free(name_der);
  return issuer_name;
}

// An upper bound of the CRL's size: per entry its SEQUENCE, INTEGER, time and extensions. Sizing
// the buffer once keeps a 1M-entry CRL from being copied while it grows.
std::size_t estimated_crl_size(std::span<const CrlEntry> entries) {
  std::size_t estimate = 512;
  for (const auto& e : entries)
    estimate += 8 + e.serial_length + 1 + 17 + (e.reason ? 13 : 0) + (e.invalidity_date ? 26 : 0) + 4;
  return estimate;
}

void write_entry_extensions(DerWriter& w, const CrlEntry& e, std::vector<uint8_t>& invalidity) {
  auto exts = w.begin(0x30);
  if (e.reason != 0) w.raw(reason_extension(e.reason));
  if (e.invalidity_date != 0) {
    // SEQUENCE { OID 2.5.29.24, OCTET STRING { GeneralizedTime } }
    static const uint8_t head[] = {0x30, 0x18, 0x06, 0x03, 0x55, 0x1d, 0x18, 0x04, 0x11, 0x18, 0x0f};
    w.raw(std::span<const uint8_t>(head, sizeof head));
    invalidity.clear();
    write_generalized(invalidity, e.invalidity_date);
    w.raw(invalidity);
  }
  w.end(exts);
}

void write_revoked_certificates(DerWriter& w, std::span<const CrlEntry> entries) {
  if (entries.empty()) return;
  auto revoked = w.begin(0x30);
  std::vector<uint8_t> invalidity(15);
  for (const auto& e : entries) {
    auto entry = w.begin(0x30);
    w.unsigned_integer(e.serial_bytes());
    write_time(w, e.revoked_at);
    if (e.reason != 0 || e.invalidity_date != 0) write_entry_extensions(w, e, invalidity);
    w.end(entry);
  }
  w.end(revoked);
}

// AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
std::vector<uint8_t> authority_key_identifier_der(const ASN1_OCTET_STRING* skid) {
  DerWriter aki;
  auto s = aki.begin(0x30);
  aki.bytes().push_back(0x80);
  DerWriter::append_length(aki.bytes(), static_cast<std::size_t>(ASN1_STRING_length(skid)));
  aki.raw(std::span<const uint8_t>(ASN1_STRING_get0_data(skid), static_cast<std::size_t>(ASN1_STRING_length(skid))));
  aki.end(s);
  return std::move(aki.bytes());
}

void write_crl_extensions(DerWriter& w, X509* issuer, const CrlParams& p) {
  auto ext_wrapper = w.begin(0xa0);
  auto exts = w.begin(0x30);
  if (const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(issuer))
    extension(w, "2.5.29.35", false, authority_key_identifier_der(skid));
  extension(w, "2.5.29.20", false, integer_der(p.crl_number));
  if (p.delta_base) extension(w, "2.5.29.27", true, integer_der(*p.delta_base));
  if (!p.issuing_distribution_point.empty())
    extension(w, "2.5.29.28", true, issuing_distribution_point_der(p.issuing_distribution_point));
  // A delta CRL is itself the freshest: RFC 5280 5.2.6 puts the extension in full CRLs only.
  if (!p.freshest_crl.empty() && !p.delta_base) extension(w, "2.5.29.46", false, freshest_crl_der(p.freshest_crl));
  w.end(exts);
  w.end(ext_wrapper);
}

}  // namespace

Result<std::vector<uint8_t>> build_crl(const Issuer& issuer, const CrlParams& p, std::span<const CrlEntry> entries) {
  CA_CHECK(check_uri(p.issuing_distribution_point, "issuing distribution point URI"));
  if (!p.delta_base) CA_CHECK(check_uri(p.freshest_crl, "freshest CRL URI"));
  CA_TRY(std::vector<uint8_t> alg, signature_algorithm_der(issuer.key().handle()));
  CA_TRY(std::vector<uint8_t> issuer_name, issuer_name_der(issuer.certificate()));

  DerWriter w;
  w.reserve(estimated_crl_size(entries));
  auto cert_list = w.begin(0x30);
  auto tbs = w.begin(0x30);
  w.integer(1);  // v2
  w.raw(alg);
  w.raw(issuer_name);
  w.time(p.this_update);
  w.time(p.next_update);
  write_revoked_certificates(w, entries);
  write_crl_extensions(w, issuer.certificate(), p);
  w.end(tbs);

  // Sign the TBSCertList bytes in place, then append algorithm and signature.
  const std::vector<uint8_t>& buf = w.bytes();
  const std::size_t tbs_start = DerWriter::content_start(cert_list);
  auto signature = issuer.sign(std::span<const uint8_t>(buf.data() + tbs_start, buf.size() - tbs_start));
  if (!signature) return fail(signature.error().context("CRL signing failed"));
  w.raw(alg);
  w.bit_string(*signature);
  w.end(cert_list);
  return std::move(w.bytes());
}

}  // namespace ca::crypto
