#include "crypto/csr.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "crypto/extra_owners.hpp"
#include "crypto/key_quality.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

// A subject (DER) longer than this is no name anyone issues for; refused before the signature check.
constexpr int kMaxSubjectBytes = 4096;

using detail::OpensslBytes;
using detail::OpensslChars;

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Digests whose collisions are practical (or near it): a signature over them proves nothing.
const char* weak_digest_name(int md_nid) {
  switch (md_nid) {
    case NID_sha1:
      return "SHA-1";
    case NID_md5:
      return "MD5";
    case NID_md5_sha1:
      return "MD5-SHA1";
    case NID_md4:
      return "MD4";
    case NID_md2:
      return "MD2";
    case NID_mdc2:
      return "MDC2";
    default:
      return nullptr;
  }
}

const char* key_type_label(int key_id) {
  switch (key_id) {
    case EVP_PKEY_RSA:
      return "RSA";
    case EVP_PKEY_RSA_PSS:
      return "RSA-PSS";
    case EVP_PKEY_EC:
      return "EC";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    default:
      return "unsupported";
  }
}

const char* accepted_signatures(int key_id) {
  switch (key_id) {
    case EVP_PKEY_RSA:
      return "sha256WithRSAEncryption, sha384WithRSAEncryption, sha512WithRSAEncryption, sha224WithRSAEncryption or "
             "RSASSA-PSS";
    case EVP_PKEY_RSA_PSS:
      return "RSASSA-PSS";
    case EVP_PKEY_EC:
      return "ecdsa-with-SHA256, ecdsa-with-SHA384, ecdsa-with-SHA512 or ecdsa-with-SHA224";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_ED448:
      return "Ed448";
    default:
      return "nothing";
  }
}

std::string signature_algorithm_name(const ASN1_OBJECT* oid, int sig_nid) {
  switch (sig_nid) {
    case NID_rsassaPss:
      return "RSASSA-PSS";
    case NID_ED25519:
      return "Ed25519";
    case NID_ED448:
      return "Ed448";
    case NID_undef:
      break;
    default:
      return OBJ_nid2ln(sig_nid);  // "sha256WithRSAEncryption", "ecdsa-with-SHA256"
  }
  char text[128];
  OBJ_obj2txt(text, sizeof text, oid, 1);
  return text;
}

bool is_sha2(int md_nid) {
  return md_nid == NID_sha256 || md_nid == NID_sha384 || md_nid == NID_sha512 || md_nid == NID_sha224;
}

// The signature algorithm must be one the key type signs with (RFC 4055 for RSA, RFC 5758 for
// ECDSA, RFC 8410 for EdDSA), with the parameters those RFCs prescribe, over a digest stronger than
// SHA-1. Returns that digest: NID_undef for EdDSA (which hashes internally).
Result<int> check_signature_algorithm(int key_id, const X509_ALGOR* alg) {
  const ASN1_OBJECT* oid = nullptr;
  int param_type = 0;
  const void* param = nullptr;
  X509_ALGOR_get0(&oid, &param_type, &param, alg);
  int sig_nid = OBJ_obj2nid(oid);
  int md_nid = NID_undef, pkey_nid = NID_undef;
  if (sig_nid == NID_rsassaPss) {
    pkey_nid = NID_rsassaPss;
  } else if (sig_nid == NID_undef || OBJ_find_sigid_algs(sig_nid, &md_nid, &pkey_nid) != 1) {
    char text[128];
    OBJ_obj2txt(text, sizeof text, oid, 0);
    return fail(Error::bad_request(fmt::format("CSR signature algorithm {} is not supported", text)));
  }
  const std::string name = signature_algorithm_name(oid, sig_nid);
  const char* key = key_type_label(key_id);

  bool matches = false;
  switch (key_id) {
    case EVP_PKEY_RSA:
      matches = pkey_nid == NID_rsaEncryption || pkey_nid == NID_rsassaPss;
      break;
    case EVP_PKEY_RSA_PSS:
      matches = pkey_nid == NID_rsassaPss;
      break;
    case EVP_PKEY_EC:
      matches = pkey_nid == NID_X9_62_id_ecPublicKey;
      break;
    case EVP_PKEY_ED25519:
      matches = sig_nid == NID_ED25519;
      break;
    case EVP_PKEY_ED448:
      matches = sig_nid == NID_ED448;
      break;
    default:
      break;
  }
  if (!matches)
    return fail(
        Error::bad_request(fmt::format("CSR signature algorithm {} does not match its {} key; {} keys sign with {}",
                                       name, key, key, accepted_signatures(key_id))));

  if (pkey_nid == NID_rsassaPss) {
    // RSASSA-PSS names its digest in the parameters; absent means SHA-1 (RFC 4055).
    if (param_type != V_ASN1_SEQUENCE) return fail(Error::bad_request("CSR RSASSA-PSS signature has no parameters"));
    auto* seq = static_cast<const ASN1_STRING*>(param);
    const unsigned char* p = ASN1_STRING_get0_data(seq);
    detail::RsaPssParams pss(d2i_RSA_PSS_PARAMS(nullptr, &p, ASN1_STRING_length(seq)));
    if (!pss) return fail(Error::bad_request("CSR RSASSA-PSS parameters cannot be decoded: " + ossl::drain_errors()));
    md_nid = pss->hashAlgorithm ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1;
  } else if (pkey_nid == NID_rsaEncryption) {
    if (param_type != V_ASN1_UNDEF && param_type != V_ASN1_NULL)
      return fail(Error::bad_request(
          fmt::format("CSR signature algorithm {} must have NULL or absent parameters (RFC 4055)", name)));
  } else if (param_type != V_ASN1_UNDEF) {
    return fail(Error::bad_request(fmt::format("CSR signature algorithm {} must have absent parameters ({})", name,
                                               key_id == EVP_PKEY_EC ? "RFC 5758" : "RFC 8410")));
  }

  if (const char* weak = weak_digest_name(md_nid))
    return fail(Error::bad_request(
        fmt::format("CSR is signed with {}, which is not accepted; sign it with SHA-256 or stronger", weak)));
  bool eddsa = key_id == EVP_PKEY_ED25519 || key_id == EVP_PKEY_ED448;
  bool accepted = eddsa ? md_nid == NID_undef : pkey_nid == NID_rsassaPss ? md_nid != NID_undef : is_sha2(md_nid);
  if (!accepted)
    return fail(Error::bad_request(fmt::format("CSR signature algorithm {} is not accepted; {} keys sign with {}", name,
                                               key, accepted_signatures(key_id))));
  return md_nid;
}

Status check_ia5(std::string_view value, std::string_view what) {
  for (unsigned char c : value)
    if (c == 0 || c > 0x7e)
      return fail(
          Error::bad_request(fmt::format("CSR subjectAltName {} contains a byte that is not printable ASCII", what)));
  return ok();
}

Status read_subject_alt_names(const STACK_OF(X509_EXTENSION) * exts, ParsedCsr& out) {
  int critical = 0;
  ossl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, &critical, nullptr)));
  if (!names) {
    if (critical == -1) return ok();  // no subjectAltName requested
    if (critical == -2) return fail(Error::bad_request("CSR requests more than one subjectAltName extension"));
    return fail(Error::bad_request("CSR subjectAltName extension cannot be decoded: " + ossl::drain_errors()));
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(gn, &type);
    // Only the DNS, email and IP forms are strings; the others are structures.
    std::string_view bytes;
    if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_IPADD) {
      auto* s = static_cast<const ASN1_STRING*>(value);
      bytes = {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
               static_cast<std::size_t>(ASN1_STRING_length(s))};
    }
    switch (type) {
      case GEN_DNS:
        CA_CHECK(check_ia5(bytes, "DNS name"));
        out.dns_names.emplace_back(bytes);
        break;
      case GEN_EMAIL:
        CA_CHECK(check_ia5(bytes, "email address"));
        out.emails.emplace_back(bytes);
        break;
      case GEN_IPADD: {
        char text[INET6_ADDRSTRLEN];
        int family = bytes.size() == 4 ? AF_INET : bytes.size() == 16 ? AF_INET6 : AF_UNSPEC;
        if (family == AF_UNSPEC || !inet_ntop(family, bytes.data(), text, sizeof text))
          return fail(Error::bad_request(
              fmt::format("CSR subjectAltName has an IP address of {} bytes (expected 4 or 16)", bytes.size())));
        out.ip_addresses.emplace_back(text);
        break;
      }
      default: {
        // Refused rather than dropped: a certificate silently missing a requested name fails later.
        static constexpr const char* kTypeNames[] = {"otherName",     "email",         "DNS",
                                                     "X.400 address", "directoryName", "EDI party name",
                                                     "URI",           "IP address",    "registeredID"};
        const char* name = type >= 0 && type <= GEN_RID ? kTypeNames[type] : "unknown";
        return fail(Error::bad_request(fmt::format(
            "CSR subjectAltName contains a {} name; only DNS names, IP addresses and email addresses are accepted",
            name)));
      }
    }
  }
  return ok();
}

// ---- Fast path ---------------------------------------------------------------------------------
// OpenSSL 3.0 decodes the public key of every X509_REQ through its provider decoders: ≈ 100 µs
// per request, half the CPU of a whole enrollment. For the common case (an EC key on a named
// curve) the request is walked here instead and the key is built with EVP_PKEY_fromdata
// (≈ 15 µs). Anything unexpected returns nullopt and the request takes the general path, which
// then produces the precise error.

struct Tlv {
  uint8_t tag = 0;
  std::span<const uint8_t> content;  // the value
  std::span<const uint8_t> whole;    // tag, length and value
};

// Reads one DER TLV (definite lengths up to 4 bytes) from the front of `in`, advancing it.
std::optional<Tlv> read_tlv(std::span<const uint8_t>& in) {
  if (in.size() < 2) return std::nullopt;
  Tlv t;
  t.tag = in[0];
  std::size_t len = in[1], header = 2;
  if (len & 0x80) {
    std::size_t count = len & 0x7f;
    if (count == 0 || count > 4 || in.size() < 2 + count) return std::nullopt;
    len = 0;
    for (std::size_t i = 0; i < count; ++i) len = (len << 8) | in[2 + i];
    header += count;
  }
  if (in.size() - header < len) return std::nullopt;
  t.content = in.subspan(header, len);
  t.whole = in.subspan(0, header + len);
  in = in.subspan(header + len);
  return t;
}

bool equals(std::span<const uint8_t> a, std::initializer_list<uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// The named curves the fast path handles, by the DER content of their OID.
const char* curve_group(std::span<const uint8_t> oid) {
  if (equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})) return "prime256v1";
  if (equals(oid, {0x2b, 0x81, 0x04, 0x00, 0x22})) return "secp384r1";
  if (equals(oid, {0x2b, 0x81, 0x04, 0x00, 0x23})) return "secp521r1";
  return nullptr;
}

// The DER of the AlgorithmIdentifiers an EC key signs with, and their digests (OpenSSL's names).
const char* ecdsa_digest(std::span<const uint8_t> algorithm) {
  static constexpr uint8_t kPrefix[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03};
  if (algorithm.size() != sizeof kPrefix + 1 || !std::equal(std::begin(kPrefix), std::end(kPrefix), algorithm.begin()))
    return nullptr;
  switch (algorithm.back()) {
    case 0x01:
      return "SHA224";
    case 0x02:
      return "SHA256";
    case 0x03:
      return "SHA384";
    case 0x04:
      return "SHA512";
    default:
      return nullptr;
  }
}

ossl::UniquePtr<EVP_PKEY> ec_public_key(const char* group, std::span<const uint8_t> point) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return nullptr;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* key = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) return nullptr;
  return ossl::UniquePtr<EVP_PKEY>(key);
}

struct CsrParts {
  std::span<const uint8_t> info;        // certificationRequestInfo, as signed
  std::span<const uint8_t> subject;     // Name
  const char* group = nullptr;          // EC curve
  std::span<const uint8_t> point;       // EC public point
  std::span<const uint8_t> extensions;  // Extensions of the extensionRequest attribute (may be empty)
  std::span<const uint8_t> algorithm;   // signatureAlgorithm
  std::span<const uint8_t> signature;   // without the unused-bits byte
};

std::optional<CsrParts> split_ec_csr(std::span<const uint8_t> der) {
  CsrParts parts;
  auto outer = read_tlv(der);
  if (!outer || outer->tag != 0x30 || !der.empty()) return std::nullopt;
  auto body = outer->content;
  auto info = read_tlv(body);
  auto algorithm = read_tlv(body);
  auto signature = read_tlv(body);
  if (!info || info->tag != 0x30 || !algorithm || algorithm->tag != 0x30 || !signature || signature->tag != 0x03 ||
      !body.empty() || signature->content.empty() || signature->content[0] != 0)
    return std::nullopt;
  parts.info = info->whole;
  parts.algorithm = algorithm->whole;
  parts.signature = signature->content.subspan(1);

  auto fields = info->content;
  auto version = read_tlv(fields);
  auto subject = read_tlv(fields);
  auto spki = read_tlv(fields);
  if (!version || version->tag != 0x02 || !equals(version->content, {0x00}) || !subject || subject->tag != 0x30 ||
      !spki || spki->tag != 0x30)
    return std::nullopt;
  parts.subject = subject->whole;
  auto key_fields = spki->content;
  auto key_alg = read_tlv(key_fields);
  auto key_bits = read_tlv(key_fields);
  if (!key_alg || key_alg->tag != 0x30 || !key_bits || key_bits->tag != 0x03 || !key_fields.empty() ||
      key_bits->content.size() < 2 || key_bits->content[0] != 0)
    return std::nullopt;
  auto alg_fields = key_alg->content;
  auto alg_oid = read_tlv(alg_fields);
  auto curve_oid = read_tlv(alg_fields);
  if (!alg_oid || alg_oid->tag != 0x06 || !equals(alg_oid->content, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}) ||
      !curve_oid || curve_oid->tag != 0x06 || !alg_fields.empty())
    return std::nullopt;
  parts.group = curve_group(curve_oid->content);
  if (!parts.group) return std::nullopt;
  parts.point = key_bits->content.subspan(1);

  // attributes [0]: only extensionRequest (1.2.840.113549.1.9.14) is understood here.
  if (!fields.empty()) {
    auto attributes = read_tlv(fields);
    if (!attributes || attributes->tag != 0xa0 || !fields.empty()) return std::nullopt;
    auto list = attributes->content;
    while (!list.empty()) {
      auto attribute = read_tlv(list);
      if (!attribute || attribute->tag != 0x30) return std::nullopt;
      auto a = attribute->content;
      auto type = read_tlv(a);
      auto values = read_tlv(a);
      if (!type || type->tag != 0x06 || !values || values->tag != 0x31 || !a.empty()) return std::nullopt;
      if (!equals(type->content, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e})) return std::nullopt;
      if (!parts.extensions.empty()) return std::nullopt;  // twice: let the general path judge
      auto v = values->content;
      auto extensions = read_tlv(v);
      if (!extensions || extensions->tag != 0x30 || !v.empty()) return std::nullopt;
      parts.extensions = extensions->whole;
    }
  }
  return parts;
}

// nullopt: not for the fast path (the caller takes the general one); otherwise the result.
std::optional<Result<ParsedCsr>> parse_ec_csr_fast(std::span<const uint8_t> der) {
  auto parts = split_ec_csr(der);
  if (!parts) return std::nullopt;
  auto key = ec_public_key(parts->group, parts->point);
  if (!key) {
    ossl::drain_errors();
    return std::nullopt;
  }
  // The signature algorithm is compared as bytes: one of the four an EC key signs with (RFC 5758:
  // parameters absent). Anything else is decoded only to say precisely why it is refused.
  const char* digest = ecdsa_digest(parts->algorithm);
  if (!digest) {
    const unsigned char* a = parts->algorithm.data();
    detail::Owned<X509_ALGOR, X509_ALGOR_free> algorithm(
        d2i_X509_ALGOR(nullptr, &a, static_cast<long>(parts->algorithm.size())));
    if (!algorithm) {
      ossl::drain_errors();
      return std::nullopt;
    }
    if (auto md_nid = check_signature_algorithm(EVP_PKEY_EC, algorithm.get()); !md_nid)
      return std::optional<Result<ParsedCsr>>(fail(md_nid.error()));
    return std::nullopt;  // acceptable but not in the canonical encoding: the general path judges
  }
  const unsigned char* p = parts->subject.data();
  ossl::UniquePtr<X509_NAME> subject(d2i_X509_NAME(nullptr, &p, static_cast<long>(parts->subject.size())));
  ossl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions;
  if (!parts->extensions.empty()) {
    p = parts->extensions.data();
    extensions.reset(d2i_X509_EXTENSIONS(nullptr, &p, static_cast<long>(parts->extensions.size())));
  }
  if (!subject || (!parts->extensions.empty() && !extensions)) {
    ossl::drain_errors();
    return std::nullopt;
  }
  ParsedCsr out;
  out.key = describe_public_key(key.get());
  out.signature_digest = digest;
  ossl::UniquePtr<EVP_MD_CTX> verify(EVP_MD_CTX_new());
  if (!verify || EVP_DigestVerifyInit_ex(verify.get(), nullptr, out.signature_digest.c_str(), nullptr, nullptr,
                                         key.get(), nullptr) != 1) {
    ossl::drain_errors();  // the general path reports its own errors, not these
    return std::nullopt;
  }
  if (EVP_DigestVerify(verify.get(), parts->signature.data(), parts->signature.size(), parts->info.data(),
                       parts->info.size()) != 1) {
    ossl::drain_errors();
    return std::optional<Result<ParsedCsr>>(
        fail(Error::bad_request("CSR signature does not verify: the request was altered or signed with another key")));
  }
  out.der.assign(der.begin(), der.end());
  out.public_key = std::move(key);
  out.subject = std::move(subject);
  out.subject_text = name_to_string(out.subject.get());
  if (extensions) {
    if (Status names = read_subject_alt_names(extensions.get(), out); !names)
      return std::optional<Result<ParsedCsr>>(fail(names.error()));
  }
  return std::optional<Result<ParsedCsr>>(std::move(out));
}

}  // namespace

Result<ParsedCsr> parse_csr_pem(std::string_view pem, std::size_t max_bytes) {
  if (pem.size() > max_bytes || pem.size() > static_cast<std::size_t>(INT_MAX))
    return fail(Error::bad_request(fmt::format("CSR is {} bytes; the limit is {} bytes", pem.size(), max_bytes)));
  if (is_blank(pem)) return fail(Error::bad_request("CSR is empty"));
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return fail(Error::crypto("cannot buffer the CSR: " + ossl::drain_errors()));

  char* label_raw = nullptr;
  char* headers_raw = nullptr;
  unsigned char* der_raw = nullptr;
  long der_len = 0;
  int read = PEM_read_bio(bio.get(), &label_raw, &headers_raw, &der_raw, &der_len);
  OpensslChars label(label_raw), headers(headers_raw);
  OpensslBytes der(der_raw);
  if (read != 1) {
    bool no_start = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
    std::string detail = ossl::drain_errors();
    if (no_start) return fail(Error::bad_request("CSR is not PEM: no '-----BEGIN CERTIFICATE REQUEST-----' line"));
    return fail(Error::bad_request("CSR PEM block is damaged: " + detail));
  }
  std::string_view label_text(label.get());
  if (label_text != "CERTIFICATE REQUEST" && label_text != "NEW CERTIFICATE REQUEST")
    return fail(Error::bad_request(fmt::format("expected a PEM 'CERTIFICATE REQUEST' block, found '{}'", label_text)));
  if (headers && headers.get()[0] != '\0')
    return fail(Error::bad_request("CSR PEM block has headers (is it encrypted?); plain PEM is expected"));
  if (!is_blank(pem.substr(pem.size() - static_cast<std::size_t>(BIO_pending(bio.get())))))
    return fail(
        Error::bad_request(fmt::format("CSR has unexpected data after the '-----END {}-----' line", label_text)));

  return parse_csr_der({der.get(), static_cast<std::size_t>(der_len)});
}

Result<ParsedCsr> parse_csr_der(std::span<const uint8_t> bytes, std::size_t max_bytes) {
  if (bytes.empty()) return fail(Error::bad_request("CSR is empty"));
  if (bytes.size() > max_bytes || bytes.size() > static_cast<std::size_t>(INT_MAX))
    return fail(Error::bad_request(fmt::format("CSR is {} bytes; the limit is {} bytes", bytes.size(), max_bytes)));
  if (auto fast = parse_ec_csr_fast(bytes)) return std::move(*fast);

  const long der_len = static_cast<long>(bytes.size());
  ParsedCsr out;
  const unsigned char* p = bytes.data();
  ossl::UniquePtr<X509_REQ> request(d2i_X509_REQ(nullptr, &p, der_len));
  if (!request) return fail(Error::bad_request("CSR is not a PKCS#10 certificate request: " + ossl::drain_errors()));
  if (p != bytes.data() + der_len)
    return fail(Error::bad_request(
        fmt::format("CSR has {} unexpected bytes after the PKCS#10 request", bytes.data() + der_len - p)));
  out.der.assign(bytes.begin(), bytes.end());

  EVP_PKEY* key = X509_REQ_get0_pubkey(request.get());
  if (!key) return fail(Error::bad_request("CSR public key cannot be decoded: " + ossl::drain_errors()));
  out.public_key = ossl::up_ref(key);
  out.key = describe_public_key(key);
  const int key_id = EVP_PKEY_get_base_id(key);
  if (key_id != EVP_PKEY_RSA && key_id != EVP_PKEY_RSA_PSS && key_id != EVP_PKEY_EC && key_id != EVP_PKEY_ED25519 &&
      key_id != EVP_PKEY_ED448)
    return fail(Error::bad_request(
        fmt::format("CSR key type {} is not supported; use RSA, RSA-PSS, EC, Ed25519 or Ed448", out.key.algorithm)));
  if (has_explicit_curve_parameters(key))
    return fail(Error::bad_request("EC keys must use a named curve; explicit curve parameters are refused"));
  // Cheap refusals first: nobody makes us verify a signature with a key we would refuse anyway.
  if (auto bounds = check_key_bounds(key); !bounds) return fail(Error::bad_request(bounds.error().message));
  if (const int subject_bytes = i2d_X509_NAME(X509_REQ_get_subject_name(request.get()), nullptr);
      subject_bytes > kMaxSubjectBytes)
    return fail(Error::bad_request(
        fmt::format("CSR subject is {} bytes; at most {} are accepted", subject_bytes, kMaxSubjectBytes)));

  // Checked before verifying: a mismatched algorithm or a weak digest is refused whatever the
  // signature says.
  const X509_ALGOR* algorithm = nullptr;
  X509_REQ_get0_signature(request.get(), nullptr, &algorithm);
  CA_TRY(int md_nid, check_signature_algorithm(key_id, algorithm));
  out.signature_digest = md_nid == NID_undef ? "" : OBJ_nid2sn(md_nid);
  if (X509_REQ_verify(request.get(), key) != 1) {
    ossl::drain_errors();
    return fail(
        Error::bad_request("CSR signature does not verify: the request was altered or signed with another key"));
  }

  out.subject.reset(X509_NAME_dup(X509_REQ_get_subject_name(request.get())));
  if (!out.subject) return fail(Error::crypto("cannot copy the CSR subject: " + ossl::drain_errors()));
  out.subject_text = name_to_string(out.subject.get());
  ossl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions(X509_REQ_get_extensions(request.get()));
  if (!extensions)
    return fail(Error::bad_request("CSR extensionRequest attribute cannot be decoded: " + ossl::drain_errors()));
  CA_CHECK(read_subject_alt_names(extensions.get(), out));
  return out;
}

Result<ParsedCsr> request_from_certificate(X509* cert) {
  ParsedCsr out;
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (!key) return fail(Error::bad_request("the certificate's public key cannot be decoded: " + ossl::drain_errors()));
  out.public_key = ossl::up_ref(key);
  out.key = describe_public_key(key);
  out.subject.reset(X509_NAME_dup(X509_get_subject_name(cert)));
  if (!out.subject) return fail(Error::crypto("cannot copy the certificate subject: " + ossl::drain_errors()));
  out.subject_text = name_to_string(out.subject.get());
  if (const STACK_OF(X509_EXTENSION)* extensions = X509_get0_extensions(cert))
    CA_CHECK(read_subject_alt_names(extensions, out));
  out.der = certificate_to_der(cert);
  return out;
}

}  // namespace ca::crypto
