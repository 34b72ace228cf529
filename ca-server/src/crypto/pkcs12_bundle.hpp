#pragma once
// PKCS#12 bundles, and the clone bundle built from them: the certificates and keys a CA clone
// takes from its master, named and trusted as Dogtag's `pki-server ca-clone-prepare` names them.
//
// Layout of what encode_pkcs12 writes (the layout OpenSSL and NSS both write and read):
//   - one encrypted safe (PBES2: PBKDF2 with HMAC-SHA-256, AES-256-CBC) holding the certificate bags;
//   - one plain safe holding the private keys, each in its own pkcs8ShroudedKeyBag (same PBES2);
//   - an HMAC-SHA-256 MAC over both (PKCS#12 key derivation with the same iteration count).
// Bags carry friendlyName; a certificate and its key share a localKeyID (the SHA-1 of the
// certificate, as OpenSSL and Dogtag use); certificates may carry Dogtag's trust-flags attribute.
#include <array>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::crypto {

// Dogtag/JSS store a certificate's NSS trust flags ("CTu,Cu,Cu") in a bag attribute with this OID
// (PKCS12.CERT_TRUST_FLAGS_OID), as a BMPString. Dogtag's tools read it back; NSS's pk12util and
// OpenSSL ignore it (NSS imports trust-less certificates: `certutil -M -t` sets trust afterwards).
inline constexpr const char* kTrustFlagsOid = "2.16.840.1.113730.5.1.1.1";

// PBKDF2-HMAC-SHA-256 iterations: OWASP's 2023 figure (600,000); 100,000 is the least we accept.
inline constexpr int kDefaultPkcs12Iterations = 600'000;
inline constexpr int kMinPkcs12Iterations = 100'000;

// A password held in memory only as long as needed: wiped when it goes.
class Password {
 public:
  Password() = default;
  explicit Password(std::string text) : text_(std::move(text)) {}
  Password(Password&& o) noexcept;
  Password& operator=(Password&& o) noexcept;
  Password(const Password&) = delete;
  Password& operator=(const Password&) = delete;
  ~Password();
  std::string_view view() const { return text_; }

 private:
  std::string text_;
};

// Reads a password from `source`: a file, or standard input when `source` is "-". The first line
// is the password (a trailing "\n" or "\r\n" is not part of it; other spaces are). Never empty.
// Passwords never come from the command line, where other users can read them (ps, /proc).
[[nodiscard]] Result<Password> read_password(const std::string& source);

// One certificate to store, with its key or alone.
struct Pkcs12Item {
  std::string friendly_name;
  ossl::UniquePtr<X509> cert;
  ossl::UniquePtr<EVP_PKEY> key;  // null: the certificate alone
  std::string trust_flags;        // NSS notation ("CTu,Cu,Cu"); empty: no trust attribute
};

struct Pkcs12Options {
  int iterations = kDefaultPkcs12Iterations;  // key encryption, certificate safe and MAC
};

// DER of a PKCS#12 holding `items` in their order. Fails with bad_request on an empty password,
// too few iterations or an item without a certificate; with crypto when OpenSSL fails.
[[nodiscard]] Result<std::vector<uint8_t>> encode_pkcs12(std::span<const Pkcs12Item> items, std::string_view password,
                                                         const Pkcs12Options& options = {});

// One certificate found in a bundle, with what `pki pkcs12-cert-find` shows of it.
struct Pkcs12Certificate {
  std::string id;             // SHA-1 of the DER certificate, lowercase hex (Dogtag's "Certificate ID")
  std::string serial_hex;     // lowercase, no leading zeros
  std::string friendly_name;  // "" when the bag has none
  std::string subject_dn;     // RFC 4514
  std::string issuer_dn;
  std::string trust_flags;  // "" when the bag has no trust attribute
  bool has_key = false;
  ossl::UniquePtr<X509> cert;
  ossl::UniquePtr<EVP_PKEY> key;  // set when has_key
};

// A bundle's certificates in file order, keys matched by localKeyID (or, failing that, by public key).
// A wrong password (or a damaged file: the MAC cannot tell them apart) fails with unauthorized and
// the message "wrong password or damaged file"; bytes that are not PKCS#12 fail with bad_request.
// Whatever the password, a bundle without a MAC, or with a private key in a plain keyBag (not
// encrypted), fails with bad_request: it may have been tampered with. Certificates in a plain safe
// are read (Dogtag's PKCS12Util writes them so by default).
[[nodiscard]] Result<std::vector<Pkcs12Certificate>> decode_pkcs12(std::span<const uint8_t> der,
                                                                   std::string_view password);
[[nodiscard]] Result<std::vector<Pkcs12Certificate>> read_pkcs12_file(const std::filesystem::path& path,
                                                                      std::string_view password);

// Writes the bundle atomically with mode 0600. Without `overwrite`, an existing file is never
// replaced (not even by a concurrent writer: the final step is link(2), which fails on an existing
// name) and the error is conflict.
[[nodiscard]] Status write_pkcs12_file(const std::filesystem::path& path, std::span<const uint8_t> der, bool overwrite);

// ---- The clone bundle ----------------------------------------------------------------------------

// One certificate a clone takes from its master.
struct CloneCertificate {
  std::string_view file;             // <instance>/certs/<file>.pem and <instance>/private/<file>.key
  std::string_view nickname_prefix;  // Dogtag's nickname: "<prefix> cert-<instance id><suffix>"
  std::string_view nickname_suffix;
  std::string_view trust_flags;  // as Dogtag's NSS database holds them ('u': has a key)
  bool optional;                 // exported only when the instance has it
};

// Dogtag's nicknames (pki default.cfg: pki_ca_signing_nickname, ...) and trust flags. The TLS
// server, subsystem and agent certificates are not here: each instance has its own (a clone's
// subsystem certificate is issued by the master when it registers with its join token).
inline constexpr std::array<CloneCertificate, 5> kCloneCertificates{{
    {"ca_signing", "caSigningCert", " CA", "CTu,Cu,Cu", false},
    {"ocsp_signing", "ocspSigningCert", " CA", "u,u,u", false},
    {"audit_signing", "auditSigningCert", " CA", "u,u,Pu", false},
    {"kra_storage", "storageCert", " KRA", "u,u,u", true},
    {"kra_transport", "transportCert", " KRA", "u,u,u", true},
}};

// Issuers above the CA signing certificate (a subordinate CA), PEM, optional; stored without keys.
inline constexpr std::string_view kCaChainFile = "ca_chain.pem";
// Trust given to the issuers of that chain (a trusted CA in NSS terms).
inline constexpr std::string_view kCaChainTrustFlags = "CT,C,C";

// "caSigningCert cert-demo CA".
[[nodiscard]] std::string clone_nickname(const CloneCertificate& which, std::string_view instance_id);
// NSS trust flags without 'u' (the "user" flag means "has a private key"): "CTu,Cu,Cu" -> "CT,C,C".
[[nodiscard]] std::string without_user_flag(std::string_view trust_flags);

struct CloneBundleSource {
  std::filesystem::path instance_dir;  // holds certs/ and private/
  std::string instance_id;             // the <instance id> in the nicknames
  bool include_keys = true;            // false: certificates only (`prepare --no-key`)
};

// The items of a clone bundle read from an instance folder: kCloneCertificates in order (each
// key checked against its certificate), then the issuers of certs/ca_chain.pem when present.
// A missing required certificate or key fails with not_found, naming the file.
[[nodiscard]] Result<std::vector<Pkcs12Item>> collect_clone_bundle(const CloneBundleSource& source);

}  // namespace ca::crypto
