#include "crypto/csr.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <climits>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "crypto/extra_owners.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

using detail::OpensslBytes;
using detail::OpensslChars;

bool is_blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// Digests whose collisions are practical (or near it): a signature over them proves nothing.
const char* weak_digest_name(int md_nid) {
  switch (md_nid) {
    case NID_sha1: return "SHA-1";
    case NID_md5: return "MD5";
    case NID_md5_sha1: return "MD5-SHA1";
    case NID_md4: return "MD4";
    case NID_md2: return "MD2";
    case NID_mdc2: return "MDC2";
    default: return nullptr;
  }
}

// The digest a signature algorithm uses: NID_undef for EdDSA (which hashes internally).
Result<int> signature_digest_nid(const X509_REQ* req) {
  const X509_ALGOR* alg = nullptr;
  X509_REQ_get0_signature(req, nullptr, &alg);
  const ASN1_OBJECT* oid = nullptr;
  int param_type = 0;
  const void* param = nullptr;
  X509_ALGOR_get0(&oid, &param_type, &param, alg);
  int sig_nid = OBJ_obj2nid(oid);
  if (sig_nid == NID_rsassaPss) {
    // RSASSA-PSS names its digest in the parameters; absent means SHA-1 (RFC 4055).
    if (param_type != V_ASN1_SEQUENCE)
      return fail(Error::bad_request("CSR RSASSA-PSS signature has no parameters"));
    auto* seq = static_cast<const ASN1_STRING*>(param);
    const unsigned char* p = ASN1_STRING_get0_data(seq);
    detail::RsaPssParams pss(d2i_RSA_PSS_PARAMS(nullptr, &p, ASN1_STRING_length(seq)));
    if (!pss) return fail(Error::bad_request("CSR RSASSA-PSS parameters cannot be decoded: " + ossl::drain_errors()));
    return pss->hashAlgorithm ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1;
  }
  int md_nid = NID_undef, pkey_nid = NID_undef;
  if (sig_nid == NID_undef || OBJ_find_sigid_algs(sig_nid, &md_nid, &pkey_nid) != 1) {
    char text[128];
    OBJ_obj2txt(text, sizeof text, oid, 0);
    return fail(Error::bad_request(fmt::format("CSR signature algorithm {} is not supported", text)));
  }
  return md_nid;
}

Status check_ia5(std::string_view value, std::string_view what) {
  for (unsigned char c : value)
    if (c == 0 || c > 0x7e)
      return fail(Error::bad_request(
          fmt::format("CSR subjectAltName {} contains a byte that is not printable ASCII", what)));
  return ok();
}

Status read_subject_alt_names(X509_REQ* req, ParsedCsr& out) {
  ossl::UniquePtr<STACK_OF(X509_EXTENSION)> exts(X509_REQ_get_extensions(req));
  if (!exts)
    return fail(Error::bad_request("CSR extensionRequest attribute cannot be decoded: " + ossl::drain_errors()));
  int critical = 0;
  ossl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, &critical, nullptr)));
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
        static constexpr const char* kTypeNames[] = {"otherName", "email", "DNS", "X.400 address", "directoryName",
                                                     "EDI party name", "URI", "IP address", "registeredID"};
        const char* name = type >= 0 && type <= GEN_RID ? kTypeNames[type] : "unknown";
        return fail(Error::bad_request(fmt::format(
            "CSR subjectAltName contains a {} name; only DNS names, IP addresses and email addresses are accepted",
            name)));
      }
    }
  }
  return ok();
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
    return fail(Error::bad_request(
        fmt::format("expected a PEM 'CERTIFICATE REQUEST' block, found '{}'", label_text)));
  if (headers && headers.get()[0] != '\0')
    return fail(Error::bad_request("CSR PEM block has headers (is it encrypted?); plain PEM is expected"));
  if (!is_blank(pem.substr(pem.size() - static_cast<std::size_t>(BIO_pending(bio.get())))))
    return fail(Error::bad_request(
        fmt::format("CSR has unexpected data after the '-----END {}-----' line", label_text)));

  ParsedCsr out;
  const unsigned char* p = der.get();
  out.request.reset(d2i_X509_REQ(nullptr, &p, der_len));
  if (!out.request)
    return fail(Error::bad_request("CSR is not a PKCS#10 certificate request: " + ossl::drain_errors()));
  if (p != der.get() + der_len)
    return fail(Error::bad_request(fmt::format("CSR has {} unexpected bytes after the PKCS#10 request",
                                               der.get() + der_len - p)));
  out.der.assign(der.get(), der.get() + der_len);

  EVP_PKEY* key = X509_REQ_get0_pubkey(out.request.get());
  if (!key) return fail(Error::bad_request("CSR public key cannot be decoded: " + ossl::drain_errors()));
  out.public_key = ossl::up_ref(key);
  out.key = describe_public_key(key);
  if (out.key.algorithm != "RSA" && out.key.algorithm != "EC" && out.key.algorithm != "Ed25519" &&
      out.key.algorithm != "Ed448")
    return fail(Error::bad_request(
        fmt::format("CSR key type {} is not supported; use RSA, EC, Ed25519 or Ed448", out.key.algorithm)));

  // Checked before verifying: a weak digest is refused whatever the signature says.
  CA_TRY(int md_nid, signature_digest_nid(out.request.get()));
  if (const char* weak = weak_digest_name(md_nid))
    return fail(Error::bad_request(
        fmt::format("CSR is signed with {}, which is not accepted; sign it with SHA-256 or stronger", weak)));
  out.signature_digest = md_nid == NID_undef ? "" : OBJ_nid2sn(md_nid);
  if (X509_REQ_verify(out.request.get(), key) != 1) {
    ossl::drain_errors();
    return fail(
        Error::bad_request("CSR signature does not verify: the request was altered or signed with another key"));
  }

  out.subject.reset(X509_NAME_dup(X509_REQ_get_subject_name(out.request.get())));
  if (!out.subject) return fail(Error::crypto("cannot copy the CSR subject: " + ossl::drain_errors()));
  out.subject_text = name_to_string(out.subject.get());
  CA_CHECK(read_subject_alt_names(out.request.get(), out));
  return out;
}

}  // namespace ca::crypto
