#include "crypto/certificate_builder.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <climits>
#include <span>
#include <string_view>

#include <fmt/format.h>
#include <openssl/objects.h>

#include "crypto/extra_owners.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "crypto/subject_public_key.hpp"

namespace ca::crypto {

namespace {

struct NamedValue {
  std::string_view name;
  int value;
};

// Bit positions from RFC 5280 §4.2.1.3.
constexpr NamedValue kKeyUsageBits[] = {
    {"digitalSignature", 0}, {"nonRepudiation", 1}, {"keyEncipherment", 2}, {"dataEncipherment", 3},
    {"keyAgreement", 4},     {"keyCertSign", 5},    {"cRLSign", 6},
};
constexpr NamedValue kExtendedKeyUsages[] = {
    {"serverAuth", NID_server_auth},        {"clientAuth", NID_client_auth},  {"codeSigning", NID_code_sign},
    {"emailProtection", NID_email_protect}, {"timeStamping", NID_time_stamp}, {"OCSPSigning", NID_OCSP_sign},
};

Result<int> lookup(std::span<const NamedValue> table, const std::string& name, std::string_view what) {
  for (const auto& entry : table)
    if (entry.name == name) return entry.value;
  std::string known;
  for (const auto& entry : table) known += fmt::format("{}{}", known.empty() ? "" : ", ", entry.name);
  return fail(Error::bad_request(fmt::format("unknown {} '{}' (known: {})", what, name, known)));
}

Status add_extension(X509* cert, int nid, void* value, bool critical, std::string_view what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_DEFAULT) != 1)
    return fail(Error::crypto(fmt::format("cannot add the {} extension: {}", what, ossl::drain_errors())));
  return ok();
}

Status push_name(GENERAL_NAMES* names, ossl::UniquePtr<GENERAL_NAME> name) {
  if (sk_GENERAL_NAME_push(names, name.get()) <= 0)
    return fail(Error::crypto("cannot grow a name list: " + ossl::drain_errors()));
  (void)name.release();  // the stack owns it now
  return ok();
}

ossl::UniquePtr<GENERAL_NAMES> new_names() { return ossl::UniquePtr<GENERAL_NAMES>(sk_GENERAL_NAME_new_null()); }

// DNS names, email addresses and URIs are IA5String: ASCII only (IDNs go in their A-label form).
Result<ossl::UniquePtr<GENERAL_NAME>> ia5_name(int type, const std::string& value, std::string_view what) {
  if (value.empty()) return fail(Error::bad_request(fmt::format("empty {}", what)));
  if (value.size() > static_cast<std::size_t>(INT_MAX) ||
      std::any_of(value.begin(), value.end(), [](char c) { return c <= 0x20 || c > 0x7e; }))
    return fail(Error::bad_request(fmt::format("{} '{}' must be printable ASCII without spaces", what, value)));
  ossl::UniquePtr<ASN1_STRING> ia5(ASN1_IA5STRING_new());
  ossl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (!ia5 || !name || ASN1_STRING_set(ia5.get(), value.data(), static_cast<int>(value.size())) != 1)
    return fail(Error::crypto(fmt::format("cannot encode {}: {}", what, ossl::drain_errors())));
  GENERAL_NAME_set0_value(name.get(), type, ia5.release());
  return name;
}

// inet_pton rather than OpenSSL's a2i_IPADDRESS, which accepts "1.2.3.4junk".
Result<ossl::UniquePtr<GENERAL_NAME>> ip_name(const std::string& ip) {
  unsigned char addr[16];
  int len = inet_pton(AF_INET, ip.c_str(), addr) == 1 ? 4 : inet_pton(AF_INET6, ip.c_str(), addr) == 1 ? 16 : 0;
  if (len == 0) return fail(Error::bad_request(fmt::format("invalid IP address '{}' for subjectAltName", ip)));
  ossl::UniquePtr<ASN1_STRING> octets(ASN1_OCTET_STRING_new());
  ossl::UniquePtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (!octets || !name || ASN1_OCTET_STRING_set(octets.get(), addr, len) != 1)
    return fail(Error::crypto("cannot encode an IP address: " + ossl::drain_errors()));
  GENERAL_NAME_set0_value(name.get(), GEN_IPADD, octets.release());
  return name;
}

Status add_key_usage(X509* cert, const CertificateSpec& spec) {
  if (spec.key_usage.empty()) return ok();
  ossl::UniquePtr<ASN1_STRING> bits(ASN1_BIT_STRING_new());
  if (!bits) return fail(Error::crypto("cannot allocate keyUsage: " + ossl::drain_errors()));
  for (const auto& usage : spec.key_usage) {
    CA_TRY(int bit, lookup(kKeyUsageBits, usage, "key usage"));
    if (bit == 5 && !spec.is_ca)
      return fail(Error::bad_request("key usage keyCertSign is only valid in a CA certificate (RFC 5280 4.2.1.3)"));
    if (ASN1_BIT_STRING_set_bit(bits.get(), bit, 1) != 1)
      return fail(Error::crypto("cannot set a keyUsage bit: " + ossl::drain_errors()));
  }
  return add_extension(cert, NID_key_usage, bits.get(), true, "keyUsage");
}

Status add_extended_key_usage(X509* cert, const CertificateSpec& spec) {
  if (spec.extended_key_usage.empty()) return ok();
  detail::ExtendedKeyUsage eku(sk_ASN1_OBJECT_new_null());
  if (!eku) return fail(Error::crypto("cannot allocate extendedKeyUsage: " + ossl::drain_errors()));
  std::vector<int> seen;
  for (const auto& usage : spec.extended_key_usage) {
    CA_TRY(int nid, lookup(kExtendedKeyUsages, usage, "extended key usage"));
    if (std::ranges::find(seen, nid) != seen.end()) continue;
    seen.push_back(nid);
    // Built-in objects are static: the stack's free of them is a no-op.
    if (sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(nid)) <= 0)
      return fail(Error::crypto("cannot grow extendedKeyUsage: " + ossl::drain_errors()));
  }
  return add_extension(cert, NID_ext_key_usage, eku.get(), false, "extendedKeyUsage");
}

Status add_subject_alt_names(X509* cert, const CertificateSpec& spec) {
  if (spec.dns_names.empty() && spec.ip_addresses.empty() && spec.emails.empty()) return ok();
  auto names = new_names();
  if (!names) return fail(Error::crypto("cannot allocate subjectAltName: " + ossl::drain_errors()));
  for (const auto& dns : spec.dns_names) {
    CA_TRY(auto name, ia5_name(GEN_DNS, dns, "DNS name"));
    CA_CHECK(push_name(names.get(), std::move(name)));
  }
  for (const auto& ip : spec.ip_addresses) {
    CA_TRY(auto name, ip_name(ip));
    CA_CHECK(push_name(names.get(), std::move(name)));
  }
  for (const auto& email : spec.emails) {
    CA_TRY(auto name, ia5_name(GEN_EMAIL, email, "email address"));
    CA_CHECK(push_name(names.get(), std::move(name)));
  }
  // With an empty subject the SAN carries the identity and must be critical (RFC 5280 4.2.1.6).
  bool critical = X509_NAME_entry_count(spec.subject) == 0;
  return add_extension(cert, NID_subject_alt_name, names.get(), critical, "subjectAltName");
}

Status add_key_identifiers(X509* cert, std::span<const unsigned char> issuer_key_id) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents.
  if (X509_pubkey_digest(cert, EVP_sha1(), digest, &len) != 1)
    return fail(Error::crypto("cannot hash the public key: " + ossl::drain_errors()));
  ossl::UniquePtr<ASN1_STRING> ski(ASN1_OCTET_STRING_new());
  if (!ski || ASN1_OCTET_STRING_set(ski.get(), digest, static_cast<int>(len)) != 1)
    return fail(Error::crypto("cannot allocate subjectKeyIdentifier: " + ossl::drain_errors()));
  CA_CHECK(add_extension(cert, NID_subject_key_identifier, ski.get(), false, "subjectKeyIdentifier"));

  if (issuer_key_id.empty()) issuer_key_id = {digest, len};  // self-signed: our own identifier
  detail::AuthorityKeyId akid(AUTHORITY_KEYID_new());
  if (akid) akid->keyid = ASN1_OCTET_STRING_new();
  if (!akid || !akid->keyid ||
      ASN1_OCTET_STRING_set(akid->keyid, issuer_key_id.data(), static_cast<int>(issuer_key_id.size())) != 1)
    return fail(Error::crypto("cannot allocate authorityKeyIdentifier: " + ossl::drain_errors()));
  return add_extension(cert, NID_authority_key_identifier, akid.get(), false, "authorityKeyIdentifier");
}

// One distribution point whose full name lists every URI: they are locations of the same CRL. The
// syntax of both crlDistributionPoints and freshestCRL.
Result<detail::CrlDistPoints> distribution_points(const std::vector<std::string>& uris, std::string_view what) {
  auto names = new_names();
  if (!names) return fail(Error::crypto(fmt::format("cannot allocate {}: {}", what, ossl::drain_errors())));
  for (const auto& uri : uris) {
    CA_TRY(auto name, ia5_name(GEN_URI, uri, fmt::format("{} URI", what)));
    CA_CHECK(push_name(names.get(), std::move(name)));
  }
  detail::CrlDistPoints points(sk_DIST_POINT_new_null());
  detail::DistPoint point(DIST_POINT_new());
  if (point) point->distpoint = DIST_POINT_NAME_new();
  if (!points || !point || !point->distpoint)
    return fail(Error::crypto(fmt::format("cannot allocate {}: {}", what, ossl::drain_errors())));
  point->distpoint->type = 0;  // fullName
  point->distpoint->name.fullname = names.release();
  if (sk_DIST_POINT_push(points.get(), point.get()) <= 0)
    return fail(Error::crypto(fmt::format("cannot grow {}: {}", what, ossl::drain_errors())));
  (void)point.release();
  return points;
}

Status add_crl_distribution_points(X509* cert, const CertificateSpec& spec) {
  if (spec.crl_distribution_points.empty()) return ok();
  CA_TRY(auto points, distribution_points(spec.crl_distribution_points, "CRL distribution point"));
  return add_extension(cert, NID_crl_distribution_points, points.get(), false, "crlDistributionPoints");
}

// Where the delta CRLs are; a relying party combines them with the full CRL from the CDP.
Status add_freshest_crl(X509* cert, const CertificateSpec& spec) {
  if (spec.freshest_crl.empty()) return ok();
  CA_TRY(auto points, distribution_points(spec.freshest_crl, "freshest CRL"));
  return add_extension(cert, NID_freshest_crl, points.get(), false, "freshestCRL");
}

Status add_authority_info_access(X509* cert, const CertificateSpec& spec) {
  if (spec.ocsp_url.empty() && spec.ca_issuers_url.empty()) return ok();
  detail::AuthorityInfoAccess aia(sk_ACCESS_DESCRIPTION_new_null());
  if (!aia) return fail(Error::crypto("cannot allocate authorityInfoAccess: " + ossl::drain_errors()));
  auto add = [&](int method, const std::string& url, std::string_view what) -> Status {
    if (url.empty()) return ok();
    CA_TRY(auto location, ia5_name(GEN_URI, url, what));
    detail::AccessDescription ad(ACCESS_DESCRIPTION_new());
    if (!ad) return fail(Error::crypto("cannot allocate an access description: " + ossl::drain_errors()));
    ASN1_OBJECT_free(ad->method);
    ad->method = OBJ_nid2obj(method);
    GENERAL_NAME_free(ad->location);
    ad->location = location.release();
    if (sk_ACCESS_DESCRIPTION_push(aia.get(), ad.get()) <= 0)
      return fail(Error::crypto("cannot grow authorityInfoAccess: " + ossl::drain_errors()));
    (void)ad.release();
    return ok();
  };
  CA_CHECK(add(NID_ad_OCSP, spec.ocsp_url, "OCSP URL"));
  CA_CHECK(add(NID_ad_ca_issuers, spec.ca_issuers_url, "CA issuers URL"));
  return add_extension(cert, NID_info_access, aia.get(), false, "authorityInfoAccess");
}

Status set_time(ASN1_TIME* field, std::chrono::system_clock::time_point t, std::string_view what) {
  // ASN1_TIME_set picks UTCTime before 2050 and GeneralizedTime from 2050 on (RFC 5280 4.1.2.5).
  if (!ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)))
    return fail(Error::bad_request(fmt::format("{} cannot be encoded: {}", what, ossl::drain_errors())));
  return ok();
}

// The shared path: `issuer_key_id` empty means self-signed.
Result<ossl::UniquePtr<X509>> build_and_sign(const CertificateSpec& spec, const X509_NAME* issuer_name,
                                             std::span<const unsigned char> issuer_key_id, EVP_PKEY* issuer_key,
                                             const EVP_MD* digest) {
  if (!spec.subject || !spec.public_key)
    return fail(Error::internal("CertificateSpec needs a subject and a public key"));
  if (spec.not_after <= spec.not_before)
    return fail(Error::bad_request("certificate validity ends before it begins (not_after <= not_before)"));
  CA_TRY(auto serial, serial_from_hex(spec.serial_hex));

  ossl::UniquePtr<X509> cert(X509_new());
  if (!cert) return fail(Error::crypto("cannot allocate a certificate: " + ossl::drain_errors()));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 || X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      X509_set_subject_name(cert.get(), spec.subject) != 1 || X509_set_issuer_name(cert.get(), issuer_name) != 1)
    return fail(Error::crypto("cannot fill in the certificate: " + ossl::drain_errors()));
  CA_CHECK(detail::set_subject_public_key(cert.get(), spec.public_key));
  CA_CHECK(set_time(X509_getm_notBefore(cert.get()), spec.not_before, "notBefore"));
  CA_CHECK(set_time(X509_getm_notAfter(cert.get()), spec.not_after, "notAfter"));

  detail::BasicConstraints constraints(BASIC_CONSTRAINTS_new());
  if (!constraints) return fail(Error::crypto("cannot allocate basicConstraints: " + ossl::drain_errors()));
  if (spec.is_ca) {
    constraints->ca = 0xff;  // DER TRUE; OpenSSL writes the byte as given
    if (spec.path_len >= 0) constraints->pathlen = ASN1_INTEGER_new();
    if (spec.path_len >= 0 && (!constraints->pathlen || ASN1_INTEGER_set(constraints->pathlen, spec.path_len) != 1))
      return fail(Error::crypto("cannot encode pathLenConstraint: " + ossl::drain_errors()));
  }
  CA_CHECK(add_extension(cert.get(), NID_basic_constraints, constraints.get(), true, "basicConstraints"));
  CA_CHECK(add_key_usage(cert.get(), spec));
  CA_CHECK(add_extended_key_usage(cert.get(), spec));
  CA_CHECK(add_subject_alt_names(cert.get(), spec));
  CA_CHECK(add_key_identifiers(cert.get(), issuer_key_id));
  CA_CHECK(add_crl_distribution_points(cert.get(), spec));
  CA_CHECK(add_freshest_crl(cert.get(), spec));
  CA_CHECK(add_authority_info_access(cert.get(), spec));
  if (spec.ocsp_no_check) {
    detail::Asn1Null null(ASN1_NULL_new());
    if (!null) return fail(Error::crypto("cannot allocate ocspNoCheck: " + ossl::drain_errors()));
    CA_CHECK(add_extension(cert.get(), NID_id_pkix_OCSP_noCheck, null.get(), false, "ocspNoCheck"));
  }

  if (X509_sign(cert.get(), issuer_key, digest) <= 0)
    return fail(Error::crypto("cannot sign the certificate: " + ossl::drain_errors()));
  return cert;
}

}  // namespace

Result<CertificateSigner> CertificateSigner::create(X509* issuer, EVP_PKEY* issuer_key) {
  if (!issuer || !issuer_key) return fail(Error::internal("CertificateSigner needs an issuer and its key"));
  if (X509_check_private_key(issuer, issuer_key) != 1) {
    ossl::drain_errors();
    return fail(Error::crypto(fmt::format("the issuer key is not the key of certificate '{}'",
                                          name_to_string(X509_get_subject_name(issuer)))));
  }
  CertificateSigner signer;
  signer.issuer_ = ossl::up_ref(issuer);
  signer.key_ = ossl::up_ref(issuer_key);
  signer.issuer_name_.reset(X509_NAME_dup(X509_get_subject_name(issuer)));
  if (!signer.issuer_name_) return fail(Error::crypto("cannot copy the issuer name: " + ossl::drain_errors()));
  // Use the issuer's own identifier when it has one (it may not be a SHA-1 of its key).
  if (const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(issuer)) {
    const unsigned char* data = ASN1_STRING_get0_data(ski);
    signer.key_id_.assign(data, data + ASN1_STRING_length(ski));
  } else {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_pubkey_digest(issuer, EVP_sha1(), digest, &len) != 1)
      return fail(Error::crypto("cannot hash the issuer's public key: " + ossl::drain_errors()));
    signer.key_id_.assign(digest, digest + len);
  }
  signer.digest_ = signing_digest_for(issuer_key);
  return signer;
}

Result<ossl::UniquePtr<X509>> CertificateSigner::sign(const CertificateSpec& spec) const {
  return build_and_sign(spec, issuer_name_.get(), key_id_, key_.get(), digest_);
}

Result<ossl::UniquePtr<X509>> sign_certificate(const CertificateSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  if (issuer) {
    CA_TRY(auto signer, CertificateSigner::create(issuer, issuer_key));
    return signer.sign(spec);
  }
  if (!issuer_key || !spec.public_key) return fail(Error::internal("a self-signed certificate needs its key"));
  if (EVP_PKEY_eq(spec.public_key, issuer_key) != 1) {
    ossl::drain_errors();
    return fail(Error::internal("a self-signed certificate must carry the public half of the signing key"));
  }
  return build_and_sign(spec, spec.subject, {}, issuer_key, signing_digest_for(issuer_key));
}

}  // namespace ca::crypto
