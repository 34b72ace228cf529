#include "crypto/crl_reader.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/openssl_owners.hpp"
#include "crypto/der_reader.hpp"

namespace ca::crypto {

namespace {

using Bytes = std::span<const uint8_t>;

bool equals(Bytes bytes, Bytes expected) { return std::ranges::equal(bytes, expected); }
bool equals(Bytes bytes, std::initializer_list<uint8_t> expected) { return std::ranges::equal(bytes, expected); }

Error malformed(std::string_view what, std::size_t offset, std::string_view problem) {
  return Error::bad_request(fmt::format("{} at byte {}: {}", what, offset, problem));
}

// The content octets of the OIDs we act on.
constexpr std::array<uint8_t, 3> kCrlNumber = {0x55, 0x1d, 0x14};          // 2.5.29.20
constexpr std::array<uint8_t, 3> kDeltaCrlIndicator = {0x55, 0x1d, 0x1b};  // 2.5.29.27
constexpr std::array<uint8_t, 3> kReasonCode = {0x55, 0x1d, 0x15};         // 2.5.29.21
constexpr std::array<uint8_t, 3> kInvalidityDate = {0x55, 0x1d, 0x18};     // 2.5.29.24

constexpr std::size_t kMaxSerialOctets = 20;  // RFC 5280 4.1.2.2

// Dotted text of an OID's content, for messages.
std::string dotted_oid(Bytes oid) {
  std::string text;
  uint64_t arc = 0;
  bool first = true;
  for (uint8_t b : oid) {
    arc = arc << 7 | (b & 0x7f);
    if (b & 0x80) continue;
    if (first) {
      const uint64_t top = arc < 80 ? arc / 40 : 2;
      text = fmt::format("{}.{}", top, arc - top * 40);
      first = false;
    } else {
      text += fmt::format(".{}", arc);
    }
    arc = 0;
  }
  return text;
}

// CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue }
struct CertificateListParts {
  DerValue tbs;
  DerValue algorithm;
  DerValue signature;  // BIT STRING, first content octet 0 (no unused bits)
};

Result<CertificateListParts> split_certificate_list(Bytes der) {
  DerReader input(der);
  CA_TRY(DerValue list, input.read(0x30, "CertificateList"));
  CA_CHECK(input.expect_end("CertificateList"));
  DerReader parts_reader = DerReader::inside(list);
  CertificateListParts parts;
  CA_TRY(parts.tbs, parts_reader.read(0x30, "tbsCertList"));
  CA_TRY(parts.algorithm, parts_reader.read(0x30, "signatureAlgorithm"));
  CA_TRY(parts.signature, parts_reader.read(0x03, "signatureValue"));
  CA_CHECK(parts_reader.expect_end("CertificateList"));
  if (parts.signature.content.empty() || parts.signature.content[0] != 0)
    return fail(malformed("signatureValue", parts.signature.offset, "BIT STRING without whole octets"));
  return parts;
}

// Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
struct Extension {
  Bytes oid;
  bool critical = false;
  DerValue value;  // the OCTET STRING, whose content is the extension's own DER
  std::size_t offset = 0;
};

Result<Extension> read_extension(DerReader& list) {
  CA_TRY(DerValue sequence, list.read(0x30, "Extension"));
  DerReader fields = DerReader::inside(sequence);
  Extension extension;
  extension.offset = sequence.offset;
  CA_TRY(DerValue oid, fields.read(0x06, "extnID"));
  extension.oid = oid.content;
  if (fields.next_is(0x01)) {
    CA_TRY(DerValue critical, fields.read(0x01, "critical"));
    if (!equals(critical.content, {0xff}))
      return fail(malformed("critical", critical.offset, "not TRUE (0xff); DER leaves out the default FALSE"));
    extension.critical = true;
  }
  CA_TRY(extension.value, fields.read(0x04, "extnValue"));
  CA_CHECK(fields.expect_end("Extension"));
  return extension;
}

// The one value inside an extension's OCTET STRING.
Result<DerValue> extension_value(const Extension& extension, uint8_t tag, std::string_view what) {
  DerReader inner = DerReader::inside(extension.value);
  CA_TRY(DerValue value, inner.read(tag, what));
  CA_CHECK(inner.expect_end(what));
  return value;
}

Error unknown_critical(const Extension& extension) {
  return malformed("Extension", extension.offset,
                   fmt::format("unknown critical extension {}", dotted_oid(extension.oid)));
}

Error duplicate(const Extension& extension) {
  return malformed("Extension", extension.offset, fmt::format("extension {} appears twice", dotted_oid(extension.oid)));
}

// Calls apply(extension) for each Extension of Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension.
template <typename Apply>
Status for_each_extension(const DerValue& extensions, std::string_view what, Apply&& apply) {
  DerReader list = DerReader::inside(extensions);
  if (list.at_end()) return fail(malformed(what, extensions.offset, "empty, but SIZE (1..MAX)"));
  while (!list.at_end()) {
    auto extension = read_extension(list);
    if (!extension) return fail(std::move(extension).error());
    CA_CHECK(apply(*extension));
  }
  return ok();
}

bool is_crl_reason(uint8_t code) { return code <= 10 && code != 7; }  // 7 is unused in RFC 5280

Status read_entry_extensions(const DerValue& extensions, CrlEntry& entry) {
  bool seen_reason = false, seen_invalidity = false;
  return for_each_extension(extensions, "crlEntryExtensions", [&](const Extension& extension) -> Status {
    if (equals(extension.oid, kReasonCode)) {
      if (std::exchange(seen_reason, true)) return fail(duplicate(extension));
      CA_TRY(DerValue code, extension_value(extension, 0x0a, "reasonCode"));
      if (code.content.size() != 1 || !is_crl_reason(code.content[0]))
        return fail(malformed("reasonCode", code.offset, "not an RFC 5280 CRLReason"));
      entry.reason = code.content[0];
    } else if (equals(extension.oid, kInvalidityDate)) {
      if (std::exchange(seen_invalidity, true)) return fail(duplicate(extension));
      CA_TRY(DerValue date, extension_value(extension, 0x18, "invalidityDate"));
      CA_TRY(entry.invalidity_date, der_to_unix_time(date, "invalidityDate"));
    } else if (extension.critical) {
      return fail(unknown_critical(extension));
    }
    return ok();
  });
}

// SEQUENCE { userCertificate CertificateSerialNumber, revocationDate Time, crlEntryExtensions Extensions OPTIONAL }
// Fills `entry` in place: a million entries are not copied through a Result on their way in.
Status read_entry(DerReader& list, CrlEntry& entry) {
  CA_TRY(DerValue sequence, list.read(0x30, "revoked certificate"));
  DerReader fields = DerReader::inside(sequence);
  CA_TRY(DerValue serial, fields.read(0x02, "userCertificate"));
  CA_TRY(Bytes magnitude, der_to_magnitude(serial, "userCertificate"));
  if (magnitude.size() > kMaxSerialOctets)
    return fail(malformed("userCertificate", serial.offset,
                          fmt::format("serial of {} octets, more than {}", magnitude.size(), kMaxSerialOctets)));
  std::ranges::copy(magnitude, entry.serial.begin());
  entry.serial_length = static_cast<uint8_t>(magnitude.size());
  CA_TRY(DerValue date, fields.read_any("revocationDate"));
  CA_TRY(entry.revoked_at, der_to_unix_time(date, "revocationDate"));
  if (!fields.at_end()) {
    CA_TRY(DerValue extensions, fields.read(0x30, "crlEntryExtensions"));
    CA_CHECK(read_entry_extensions(extensions, entry));
  }
  return fields.expect_end("revoked certificate");
}

// How many entries `list` holds, counting SEQUENCEs no smaller than the smallest entry up to the
// first value that is not one (the reading pass reports it). Sizes the vector once, so that a
// million entries are not copied while it grows; garbage cannot make it reserve more than
// sizeof(CrlEntry) / kSmallestEntry = 2 times its own size.
constexpr std::size_t kSmallestEntry = 2 + 3 + 15;  // SEQUENCE { INTEGER (1 octet), UTCTime }

std::size_t count_entries(DerReader list) {
  std::size_t count = 0;
  while (!list.at_end()) {
    auto value = list.read_any("entry");
    if (!value || value->tag != 0x30 || value->whole().size() < kSmallestEntry) break;
    ++count;
  }
  return count;
}

Status read_entries(const DerValue& revoked, std::vector<CrlEntry>& entries) {
  DerReader list = DerReader::inside(revoked);
  entries.reserve(count_entries(list));
  for (std::size_t index = 0; !list.at_end(); ++index) {
    auto read = read_entry(list, entries.emplace_back());
    if (!read) return fail(read.error().context(fmt::format("revokedCertificates entry {}", index)));
  }
  return ok();
}

Status read_crl_extensions(const DerValue& extensions, CrlContents& crl) {
  bool seen_number = false;
  return for_each_extension(extensions, "crlExtensions", [&](const Extension& extension) -> Status {
    if (equals(extension.oid, kCrlNumber)) {
      if (std::exchange(seen_number, true)) return fail(duplicate(extension));
      CA_TRY(DerValue number, extension_value(extension, 0x02, "CRL Number"));
      CA_TRY(crl.number, der_to_uint64(number, "CRL Number"));
    } else if (equals(extension.oid, kDeltaCrlIndicator)) {
      if (crl.delta_base) return fail(duplicate(extension));
      CA_TRY(DerValue base, extension_value(extension, 0x02, "Delta CRL Indicator"));
      CA_TRY(crl.delta_base, der_to_uint64(base, "Delta CRL Indicator"));
    } else if (extension.critical) {
      return fail(unknown_critical(extension));
    }
    return ok();
  });
}

// TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL (v2 = 1), signature AlgorithmIdentifier,
//   issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF ... OPTIONAL,
//   crlExtensions [0] EXPLICIT Extensions OPTIONAL }
Result<CrlContents> read_tbs_cert_list(const CertificateListParts& parts) {
  DerReader fields = DerReader::inside(parts.tbs);
  CrlContents crl;
  if (fields.next_is(0x02)) {
    CA_TRY(DerValue version, fields.read(0x02, "version"));
    CA_TRY(uint64_t number, der_to_uint64(version, "version"));
    if (number != 1) return fail(malformed("version", version.offset, fmt::format("{} is not v2 (1)", number)));
  }
  CA_TRY(DerValue signature, fields.read(0x30, "signature"));
  if (!std::ranges::equal(signature.whole(), parts.algorithm.whole()))
    return fail(malformed("signature", signature.offset, "differs from the signatureAlgorithm"));
  CA_CHECK(fields.read(0x30, "issuer"));
  CA_TRY(DerValue this_update, fields.read_any("thisUpdate"));
  CA_TRY(crl.this_update, der_to_unix_time(this_update, "thisUpdate"));
  if (fields.next_is(0x17) || fields.next_is(0x18)) {
    CA_TRY(DerValue next_update, fields.read_any("nextUpdate"));
    CA_TRY(crl.next_update, der_to_unix_time(next_update, "nextUpdate"));
  }
  if (fields.next_is(0x30)) {
    CA_TRY(DerValue revoked, fields.read(0x30, "revokedCertificates"));
    CA_CHECK(read_entries(revoked, crl.entries));
  }
  if (fields.next_is(0xa0)) {
    CA_TRY(DerValue explicit_tag, fields.read(0xa0, "crlExtensions"));
    DerReader inner = DerReader::inside(explicit_tag);
    CA_TRY(DerValue extensions, inner.read(0x30, "crlExtensions"));
    CA_CHECK(inner.expect_end("crlExtensions"));
    CA_CHECK(read_crl_extensions(extensions, crl));
  }
  CA_CHECK(fields.expect_end("tbsCertList"));
  return crl;
}

// The digest and key type of the signature algorithms build_crl and `openssl ca` use.
struct SignatureScheme {
  const EVP_MD* digest;  // null for Ed25519
  int key_type;
};

std::optional<SignatureScheme> signature_scheme(Bytes oid) {
  if (equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02})) return SignatureScheme{EVP_sha256(), EVP_PKEY_EC};
  if (equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03})) return SignatureScheme{EVP_sha384(), EVP_PKEY_EC};
  if (equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04})) return SignatureScheme{EVP_sha512(), EVP_PKEY_EC};
  if (equals(oid, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}))
    return SignatureScheme{EVP_sha256(), EVP_PKEY_RSA};
  if (equals(oid, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}))
    return SignatureScheme{EVP_sha384(), EVP_PKEY_RSA};
  if (equals(oid, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}))
    return SignatureScheme{EVP_sha512(), EVP_PKEY_RSA};
  if (equals(oid, {0x2b, 0x65, 0x70})) return SignatureScheme{nullptr, EVP_PKEY_ED25519};
  return std::nullopt;
}

}  // namespace

Result<CrlContents> read_crl(std::span<const uint8_t> der) {
  auto parts = split_certificate_list(der);
  if (!parts) return fail(parts.error().context("malformed CRL"));
  auto crl = read_tbs_cert_list(*parts);
  if (!crl) return fail(crl.error().context("malformed CRL"));
  return crl;
}

bool crl_signed_by(std::span<const uint8_t> der, X509* issuer) {
  EVP_PKEY* key = issuer ? X509_get0_pubkey(issuer) : nullptr;
  auto parts = split_certificate_list(der);
  if (!key || !parts) return false;
  DerReader algorithm = DerReader::inside(parts->algorithm);
  auto oid = algorithm.read(0x06, "algorithm");
  if (!oid) return false;
  auto scheme = signature_scheme(oid->content);
  if (!scheme || EVP_PKEY_get_base_id(key) != scheme->key_type) return false;
  const Bytes signature = parts->signature.content.subspan(1);
  const Bytes signed_bytes = parts->tbs.whole();
  ossl::UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  const bool verified =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, scheme->digest, nullptr, key) == 1 &&
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), signed_bytes.data(), signed_bytes.size()) == 1;
  ERR_clear_error();  // a failed check leaves its reasons in the thread's queue; the answer is the bool
  return verified;
}

}  // namespace ca::crypto
