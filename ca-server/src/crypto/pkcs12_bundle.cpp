#include "crypto/pkcs12_bundle.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <memory>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include "crypto/extra_owners.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

namespace fs = std::filesystem;

// A password or bundle file larger than this is not one.
constexpr std::size_t kMaxPasswordBytes = std::size_t{64} * 1024;
constexpr std::size_t kMaxBundleBytes = std::size_t{16} * 1024 * 1024;
// NIST SP 800-132 asks for at least 128 bits of salt; OpenSSL's default is 64.
constexpr int kSaltBytes = 16;

constexpr std::string_view kWrongPassword = "wrong password or damaged file";
// Without a MAC nothing says the bundle is the one its maker wrote: anyone could have swapped a
// certificate or key. Every writer we meet adds one: ours, NSS's pk12util, Dogtag's PKCS12Util,
// and OpenSSL unless told -nomac.
constexpr std::string_view kNoMac = "the bundle has no integrity MAC; refusing it (a tampered or hand-made bundle)";
// A keyBag is a private key in clear (pkcs8ShroudedKeyBag is the encrypted kind). Certificates in
// a plain safe are accepted: they are public, the MAC covers them, and Dogtag's PKCS12Util writes
// them that way by default (its certificate encryption is "none").
constexpr std::string_view kPlainKey = "the bundle holds an unencrypted private key; refusing it";
constexpr int kMaxSafeNesting = 4;

// Owners for the PKCS#12 building blocks (only this file handles them).
using detail::Owned;

void free_bags(STACK_OF(PKCS12_SAFEBAG) * p) { sk_PKCS12_SAFEBAG_pop_free(p, PKCS12_SAFEBAG_free); }
void free_safes(STACK_OF(PKCS7) * p) { sk_PKCS7_pop_free(p, PKCS7_free); }

using SafeBags = Owned<STACK_OF(PKCS12_SAFEBAG), free_bags>;
using SafeBag = Owned<PKCS12_SAFEBAG, PKCS12_SAFEBAG_free>;
using Safes = Owned<STACK_OF(PKCS7), free_safes>;
using Safe = Owned<PKCS7, PKCS7_free>;
using PrivateKeyInfo = Owned<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>;
using Object = Owned<ASN1_OBJECT, ASN1_OBJECT_free>;
using detail::OpensslChars;

Error crypto_error(std::string_view what) { return Error::crypto(fmt::format("{}: {}", what, ossl::drain_errors())); }

Result<std::array<unsigned char, 20>> certificate_sha1(X509* cert) {
  std::array<unsigned char, 20> id{};
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha1(), id.data(), &len) != 1 || len != id.size())
    return fail(crypto_error("cannot hash the certificate"));
  return id;
}

// Trust flags are ASCII; the attribute holds them as a BMPString (UCS-2, big-endian).
Result<std::string> to_bmp(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      return fail(Error::bad_request(fmt::format("trust flags '{}' are not printable ASCII", ascii)));
    out += '\0';
    out += c;
  }
  return out;
}

Status add_certificate_bag(STACK_OF(PKCS12_SAFEBAG) * bags, const Pkcs12Item& item,
                           std::span<const unsigned char> local_key_id) {
  SafeBag bag(PKCS12_SAFEBAG_create_cert(item.cert.get()));
  if (!bag) return fail(crypto_error("cannot make a certificate bag"));
  if (!item.friendly_name.empty() && PKCS12_add_friendlyname_utf8(bag.get(), item.friendly_name.c_str(),
                                                                  static_cast<int>(item.friendly_name.size())) != 1)
    return fail(crypto_error(fmt::format("cannot name the certificate '{}'", item.friendly_name)));
  if (!local_key_id.empty() && PKCS12_add_localkeyid(bag.get(), const_cast<unsigned char*>(local_key_id.data()),
                                                     static_cast<int>(local_key_id.size())) != 1)
    return fail(crypto_error("cannot add the local key ID"));
  if (!item.trust_flags.empty()) {
    CA_TRY(std::string bmp, to_bmp(item.trust_flags));
    if (PKCS12_add1_attr_by_txt(bag.get(), kTrustFlagsOid, V_ASN1_BMPSTRING,
                                reinterpret_cast<const unsigned char*>(bmp.data()), static_cast<int>(bmp.size())) != 1)
      return fail(crypto_error("cannot add the trust flags"));
  }
  if (sk_PKCS12_SAFEBAG_push(bags, bag.get()) <= 0) return fail(crypto_error("cannot add a certificate bag"));
  (void)bag.release();
  return ok();
}

Status add_key_bag(STACK_OF(PKCS12_SAFEBAG) * bags, const Pkcs12Item& item, std::span<const unsigned char> local_key_id,
                   std::string_view password, int iterations) {
  PrivateKeyInfo info(EVP_PKEY2PKCS8(item.key.get()));
  if (!info) return fail(crypto_error(fmt::format("cannot encode the key of '{}'", item.friendly_name)));
  // A cipher NID makes this PBES2 (PBKDF2, HMAC-SHA-256 by default in OpenSSL 3) rather than a
  // PKCS#12 PBE.
  SafeBag bag(PKCS12_SAFEBAG_create_pkcs8_encrypt_ex(NID_aes_256_cbc, password.data(),
                                                     static_cast<int>(password.size()), nullptr, kSaltBytes, iterations,
                                                     info.get(), nullptr, nullptr));
  if (!bag) return fail(crypto_error(fmt::format("cannot encrypt the key of '{}'", item.friendly_name)));
  if (!item.friendly_name.empty() && PKCS12_add_friendlyname_utf8(bag.get(), item.friendly_name.c_str(),
                                                                  static_cast<int>(item.friendly_name.size())) != 1)
    return fail(crypto_error("cannot name the key"));
  if (PKCS12_add_localkeyid(bag.get(), const_cast<unsigned char*>(local_key_id.data()),
                            static_cast<int>(local_key_id.size())) != 1)
    return fail(crypto_error("cannot add the local key ID"));
  if (sk_PKCS12_SAFEBAG_push(bags, bag.get()) <= 0) return fail(crypto_error("cannot add a key bag"));
  (void)bag.release();
  return ok();
}

// ---- Reading ----

struct FoundKey {
  std::string local_key_id;
  ossl::UniquePtr<EVP_PKEY> key;
  bool used = false;
};

struct FoundCertificate {
  Pkcs12Certificate entry;
  std::string local_key_id;
};

std::string local_key_id_of(const PKCS12_SAFEBAG* bag) {
  const ASN1_TYPE* id = PKCS12_SAFEBAG_get0_attr(bag, NID_localKeyID);
  if (!id || id->type != V_ASN1_OCTET_STRING) return {};
  const ASN1_OCTET_STRING* s = id->value.octet_string;
  return to_hex({ASN1_STRING_get0_data(s), static_cast<std::size_t>(ASN1_STRING_length(s))});
}

std::string friendly_name_of(PKCS12_SAFEBAG* bag) {
  OpensslChars name(PKCS12_get_friendlyname(bag));
  return name ? std::string(name.get()) : std::string();
}

std::string trust_flags_of(const PKCS12_SAFEBAG* bag) {
  const STACK_OF(X509_ATTRIBUTE)* attrs = PKCS12_SAFEBAG_get0_attrs(bag);
  Object oid(OBJ_txt2obj(kTrustFlagsOid, 1));
  if (!attrs || !oid) return {};
  for (int i = 0; i < sk_X509_ATTRIBUTE_num(attrs); ++i) {
    X509_ATTRIBUTE* attr = sk_X509_ATTRIBUTE_value(attrs, i);
    if (OBJ_cmp(X509_ATTRIBUTE_get0_object(attr), oid.get()) != 0) continue;
    const ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
    if (!value) return {};
    if (value->type == V_ASN1_BMPSTRING) {
      const ASN1_STRING* s = value->value.bmpstring;
      OpensslChars utf8(OPENSSL_uni2utf8(ASN1_STRING_get0_data(s), ASN1_STRING_length(s)));
      return utf8 ? std::string(utf8.get()) : std::string();
    }
    if (value->type == V_ASN1_UTF8STRING || value->type == V_ASN1_PRINTABLESTRING || value->type == V_ASN1_IA5STRING) {
      const ASN1_STRING* s = value->value.asn1_string;
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                         static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
  }
  return {};
}

// Refuses plain keyBags anywhere in `bags`, nested safe contents included.
Status refuse_plain_keys(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth) {
  if (depth > kMaxSafeNesting) return fail(Error::bad_request("PKCS#12 safe contents nested too deeply"));
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
    const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
    const int nid = PKCS12_SAFEBAG_get_nid(bag);
    if (nid == NID_keyBag) return fail(Error::bad_request(std::string(kPlainKey)));
    if (nid == NID_safeContentsBag) CA_CHECK(refuse_plain_keys(PKCS12_SAFEBAG_get0_safes(bag), depth + 1));
  }
  return ok();
}

Status read_bags(const STACK_OF(PKCS12_SAFEBAG) * bags, std::string_view password, std::vector<FoundCertificate>& certs,
                 std::vector<FoundKey>& keys, int depth) {
  if (depth > kMaxSafeNesting) return fail(Error::bad_request("PKCS#12 safe contents nested too deeply"));
  const int passlen = static_cast<int>(password.size());
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
    PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
    switch (PKCS12_SAFEBAG_get_nid(bag)) {
      case NID_certBag: {
        if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate) break;  // SDSI certificates: none of ours
        ossl::UniquePtr<X509> cert(PKCS12_SAFEBAG_get1_cert(bag));
        if (!cert) return fail(Error::bad_request("unreadable certificate bag: " + ossl::drain_errors()));
        FoundCertificate found;
        found.local_key_id = local_key_id_of(bag);
        found.entry.friendly_name = friendly_name_of(bag);
        found.entry.trust_flags = trust_flags_of(bag);
        found.entry.cert = std::move(cert);
        certs.push_back(std::move(found));
        break;
      }
      case NID_keyBag:
        // Also inside an encrypted safe, where the scan before the MAC could not see it.
        return fail(Error::bad_request(std::string(kPlainKey)));
      case NID_pkcs8ShroudedKeyBag: {
        // passlen gives OpenSSL the length: the password need not be terminated.
        // NOLINTNEXTLINE(bugprone-suspicious-stringview-data-usage)
        PrivateKeyInfo info(PKCS12_decrypt_skey_ex(bag, password.data(), passlen, nullptr, nullptr));
        if (!info) {
          ossl::drain_errors();
          return fail(Error::unauthorized(std::string(kWrongPassword)));
        }
        ossl::UniquePtr<EVP_PKEY> key(EVP_PKCS82PKEY_ex(info.get(), nullptr, nullptr));
        if (!key) return fail(Error::bad_request("unreadable private key: " + ossl::drain_errors()));
        keys.push_back(FoundKey{local_key_id_of(bag), std::move(key)});
        break;
      }
      case NID_safeContentsBag:
        CA_CHECK(read_bags(PKCS12_SAFEBAG_get0_safes(bag), password, certs, keys, depth + 1));
        break;
      default:
        break;  // CRLs, secrets: not listed
    }
  }
  return ok();
}

// Keys belong to certificates by localKeyID; a bag without one is matched by its public key.
void match_keys(std::vector<FoundCertificate>& certs, std::vector<FoundKey>& keys) {
  for (auto& c : certs) {
    if (c.local_key_id.empty()) continue;
    for (auto& k : keys) {
      if (k.used || k.local_key_id != c.local_key_id) continue;
      c.entry.key = std::move(k.key);
      k.used = true;
      break;
    }
  }
  for (auto& c : certs) {
    if (c.entry.key) continue;
    for (auto& k : keys) {
      if (k.used) continue;
      if (X509_check_private_key(c.entry.cert.get(), k.key.get()) == 1) {
        c.entry.key = std::move(k.key);
        k.used = true;
        break;
      }
    }
  }
  ossl::drain_errors();  // mismatches tried above leave errors behind
}

// Reads up to EOF (or, with `line_only`, up to the first newline: a terminal has no EOF until Ctrl-D).
Result<std::string> read_limited(int fd, std::size_t limit, std::string_view what, bool line_only = false) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      OPENSSL_cleanse(buf, sizeof buf);
      OPENSSL_cleanse(out.data(), out.size());
      return fail(
          Error::io(fmt::format("cannot read {}: {}", what, std::error_code(e, std::generic_category()).message())));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > limit) {
      OPENSSL_cleanse(buf, sizeof buf);
      OPENSSL_cleanse(out.data(), out.size());
      return fail(Error::io(fmt::format("{} is larger than {} bytes", what, limit)));
    }
    // Grow by hand so that no reallocation leaves a copy of a password behind.
    if (out.capacity() < out.size() + static_cast<std::size_t>(n)) {
      std::string bigger;
      bigger.reserve(std::max(out.capacity() * 2, out.size() + static_cast<std::size_t>(n)));
      bigger = out;
      OPENSSL_cleanse(out.data(), out.size());
      out.swap(bigger);
    }
    out.append(buf, static_cast<std::size_t>(n));
    if (line_only && out.find('\n') != std::string::npos) break;
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return out;
}

// A whole file of at most kMaxBundleBytes (bundles, chains), read through read_limited.
Result<std::string> read_file_limited(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;  // before anything else can change it
    return fail(Error::io(
        fmt::format("cannot open '{}': {}", path.string(), std::error_code(err, std::generic_category()).message())));
  }
  auto contents = read_limited(fd, kMaxBundleBytes, fmt::format("'{}'", path.string()));
  ::close(fd);
  return contents;
}

Result<std::vector<ossl::UniquePtr<X509>>> load_certificate_chain(const fs::path& path) {
  CA_TRY(auto text, read_file_limited(path));
  ossl::UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return fail(crypto_error("cannot buffer the chain"));
  std::vector<ossl::UniquePtr<X509>> chain;
  while (true) {
    ossl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    chain.push_back(std::move(cert));
  }
  // The end of the file reads as "no start line"; anything else is a damaged block, which must not
  // silently shorten the chain that goes into a clone's bundle.
  bool at_end = ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE;
  std::string detail = ossl::drain_errors();
  if (!at_end)
    return fail(
        Error::config(fmt::format("'{}': certificate {} is damaged: {}", path.string(), chain.size() + 1, detail)));
  if (chain.empty()) return fail(Error::config(fmt::format("'{}' holds no PEM certificate", path.string())));
  return chain;
}

}  // namespace

Password::Password(Password&& o) noexcept : text_(std::move(o.text_)) {
  OPENSSL_cleanse(o.text_.data(), o.text_.size());
  o.text_.clear();
}

Password& Password::operator=(Password&& o) noexcept {
  if (this != &o) {
    OPENSSL_cleanse(text_.data(), text_.size());
    text_ = std::move(o.text_);
    OPENSSL_cleanse(o.text_.data(), o.text_.size());
    o.text_.clear();
  }
  return *this;
}

Password::~Password() { OPENSSL_cleanse(text_.data(), text_.size()); }

Result<Password> read_password(const std::string& source) {
  const bool from_stdin = source == "-";
  const std::string what =
      from_stdin ? std::string("the password from standard input") : fmt::format("password file '{}'", source);
  int fd = from_stdin ? STDIN_FILENO : ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(
        Error::io(fmt::format("cannot open {}: {}", what, std::error_code(errno, std::generic_category()).message())));
  auto text = read_limited(fd, kMaxPasswordBytes, what, from_stdin);
  if (!from_stdin) ::close(fd);
  if (!text) return fail(text.error());
  Password whole(std::move(*text));
  std::string_view line = whole.view();
  line = line.substr(0, line.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (line.empty()) return fail(Error::bad_request(fmt::format("{} is empty", what)));
  return Password(std::string(line));
}

Result<std::vector<uint8_t>> encode_pkcs12(std::span<const Pkcs12Item> items, std::string_view password,
                                           const Pkcs12Options& options) {
  if (password.empty()) return fail(Error::bad_request("the PKCS#12 password must not be empty"));
  if (password.size() > static_cast<std::size_t>(INT_MAX)) return fail(Error::bad_request("password is too long"));
  if (options.iterations < kMinPkcs12Iterations)
    return fail(Error::bad_request(
        fmt::format("{} PBKDF2 iterations are too few (at least {})", options.iterations, kMinPkcs12Iterations)));
  if (items.empty()) return fail(Error::bad_request("nothing to put in the PKCS#12 bundle"));
  // OpenSSL wants a NUL-terminated password in places; keep one copy, wiped on return.
  Password pass{std::string(password)};
  const char* p = pass.view().data();
  const int plen = static_cast<int>(pass.view().size());

  SafeBags cert_bags(sk_PKCS12_SAFEBAG_new_null());
  SafeBags key_bags(sk_PKCS12_SAFEBAG_new_null());
  if (!cert_bags || !key_bags) return fail(crypto_error("cannot allocate safe bags"));
  for (const auto& item : items) {
    if (!item.cert) return fail(Error::bad_request(fmt::format("'{}' has no certificate", item.friendly_name)));
    std::span<const unsigned char> id;
    std::array<unsigned char, 20> sha1{};
    if (item.key) {
      if (X509_check_private_key(item.cert.get(), item.key.get()) != 1) {
        ossl::drain_errors();
        return fail(
            Error::bad_request(fmt::format("the key of '{}' does not match its certificate", item.friendly_name)));
      }
      CA_TRY(sha1, certificate_sha1(item.cert.get()));
      id = sha1;
    }
    CA_CHECK(add_certificate_bag(cert_bags.get(), item, id));
    if (item.key) CA_CHECK(add_key_bag(key_bags.get(), item, id, pass.view(), options.iterations));
  }

  Safes safes(sk_PKCS7_new_null());
  if (!safes) return fail(crypto_error("cannot allocate the safes"));
  Safe cert_safe(PKCS12_pack_p7encdata_ex(NID_aes_256_cbc, p, plen, nullptr, kSaltBytes, options.iterations,
                                          cert_bags.get(), nullptr, nullptr));
  if (!cert_safe || sk_PKCS7_push(safes.get(), cert_safe.get()) <= 0)
    return fail(crypto_error("cannot encrypt the certificates"));
  (void)cert_safe.release();
  if (sk_PKCS12_SAFEBAG_num(key_bags.get()) > 0) {
    Safe key_safe(PKCS12_pack_p7data(key_bags.get()));
    if (!key_safe || sk_PKCS7_push(safes.get(), key_safe.get()) <= 0) return fail(crypto_error("cannot pack the keys"));
    (void)key_safe.release();
  }
  ossl::UniquePtr<PKCS12> p12(PKCS12_add_safes_ex(safes.get(), 0, nullptr, nullptr));
  if (!p12) return fail(crypto_error("cannot assemble the PKCS#12"));
  if (PKCS12_set_mac(p12.get(), p, plen, nullptr, kSaltBytes, options.iterations, EVP_sha256()) != 1)
    return fail(crypto_error("cannot compute the PKCS#12 MAC"));

  int len = i2d_PKCS12(p12.get(), nullptr);
  if (len <= 0) return fail(crypto_error("cannot encode the PKCS#12"));
  std::vector<uint8_t> der(static_cast<std::size_t>(len));
  unsigned char* out = der.data();
  if (i2d_PKCS12(p12.get(), &out) != len) return fail(crypto_error("cannot encode the PKCS#12"));
  return der;
}

Result<std::vector<Pkcs12Certificate>> decode_pkcs12(std::span<const uint8_t> der, std::string_view password) {
  if (der.size() > kMaxBundleBytes) return fail(Error::bad_request("PKCS#12 bundle is too large"));
  if (password.size() > static_cast<std::size_t>(INT_MAX)) return fail(Error::bad_request("password is too long"));
  const unsigned char* in = der.data();
  ossl::UniquePtr<PKCS12> p12(d2i_PKCS12(nullptr, &in, static_cast<long>(der.size())));
  if (!p12) {
    ossl::drain_errors();  // ASN.1 parser details say nothing more to an operator
    return fail(Error::bad_request("not a PKCS#12 file, or a damaged one"));
  }
  // What makes a bundle unacceptable whatever its password is checked before the password: no
  // MAC, or a private key in clear in a plain safe (what `openssl pkcs12 -keypbe NONE` writes).
  if (PKCS12_mac_present(p12.get()) != 1) return fail(Error::bad_request(std::string(kNoMac)));
  Safes safes(PKCS12_unpack_authsafes(p12.get()));
  if (!safes) return fail(Error::bad_request("damaged PKCS#12 file: " + ossl::drain_errors()));
  std::vector<SafeBags> plain_bags(static_cast<std::size_t>(sk_PKCS7_num(safes.get())));
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* safe = sk_PKCS7_value(safes.get(), i);
    if (OBJ_obj2nid(safe->type) != NID_pkcs7_data) continue;
    SafeBags& bags = plain_bags[static_cast<std::size_t>(i)];
    bags.reset(PKCS12_unpack_p7data(safe));
    if (!bags) return fail(Error::bad_request("damaged PKCS#12 file: " + ossl::drain_errors()));
    CA_CHECK(refuse_plain_keys(bags.get(), 0));
  }

  Password pass{std::string(password)};
  const char* p = pass.view().data();
  const int plen = static_cast<int>(pass.view().size());
  // With a MAC, a wrong password is told apart from a damaged safe only as far as the MAC can
  // tell (not at all), hence one message for both.
  if (PKCS12_verify_mac(p12.get(), p, plen) != 1) {
    ossl::drain_errors();
    return fail(Error::unauthorized(std::string(kWrongPassword)));
  }

  std::vector<FoundCertificate> certs;
  std::vector<FoundKey> keys;
  for (int i = 0; i < sk_PKCS7_num(safes.get()); ++i) {
    PKCS7* safe = sk_PKCS7_value(safes.get(), i);
    SafeBags bags;
    const int type = OBJ_obj2nid(safe->type);
    if (type == NID_pkcs7_data) {
      bags = std::move(plain_bags[static_cast<std::size_t>(i)]);
    } else if (type == NID_pkcs7_encrypted) {
      bags.reset(PKCS12_unpack_p7encdata(safe, p, plen));
      if (!bags) {
        ossl::drain_errors();
        return fail(Error::unauthorized(std::string(kWrongPassword)));
      }
    } else {
      continue;  // public-key (enveloped) safes: not used by PKCS#12 in password mode
    }
    CA_CHECK(read_bags(bags.get(), pass.view(), certs, keys, 0));
  }
  match_keys(certs, keys);

  std::vector<Pkcs12Certificate> out;
  out.reserve(certs.size());
  for (auto& c : certs) {
    X509* cert = c.entry.cert.get();
    c.entry.id = sha1_fingerprint_hex(cert);
    c.entry.serial_hex = serial_to_hex(X509_get0_serialNumber(cert));
    c.entry.subject_dn = name_to_string(X509_get_subject_name(cert));
    c.entry.issuer_dn = name_to_string(X509_get_issuer_name(cert));
    c.entry.has_key = c.entry.key != nullptr;
    out.push_back(std::move(c.entry));
  }
  return out;
}

Result<std::vector<Pkcs12Certificate>> read_pkcs12_file(const fs::path& path, std::string_view password) {
  CA_TRY(auto bytes, read_file_limited(path));
  auto contents = decode_pkcs12({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, password);
  if (!contents) return fail(contents.error().context(path.string()));
  return contents;
}

Status write_pkcs12_file(const fs::path& path, std::span<const uint8_t> der, bool overwrite) {
  std::string_view bytes(reinterpret_cast<const char*>(der.data()), der.size());
  if (overwrite) return write_text_file_atomic(path, bytes, 0600);
  std::error_code ec;
  if (fs::exists(path, ec)) return fail(Error::conflict(fmt::format("'{}' already exists", path.string())));
  // Written complete under a private name, then linked to the final name: link(2) never replaces
  // an existing file, so a file that appeared meanwhile is left alone.
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  unsigned char random[8];
  if (RAND_bytes(random, sizeof random) != 1) return fail(crypto_error("cannot draw a random file name"));
  const fs::path staging = dir / fmt::format(".{}.new-{}-{}", path.filename().string(), ::getpid(), to_hex(random));
  CA_CHECK(write_text_file_atomic(staging, bytes, 0600));
  int linked = ::link(staging.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(staging.c_str());
  if (linked != 0) {
    if (link_errno == EEXIST) return fail(Error::conflict(fmt::format("'{}' already exists", path.string())));
    return fail(Error::io(fmt::format("cannot create '{}': {}", path.string(),
                                      std::error_code(link_errno, std::generic_category()).message())));
  }
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  bool synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
  if (dir_fd >= 0) ::close(dir_fd);
  if (!synced) return fail(Error::io(fmt::format("cannot fsync folder '{}'", dir.string())));
  return ok();
}

std::string clone_nickname(const CloneCertificate& which, std::string_view instance_id) {
  return fmt::format("{} cert-{}{}", which.nickname_prefix, instance_id, which.nickname_suffix);
}

std::string without_user_flag(std::string_view trust_flags) {
  std::string out;
  for (char c : trust_flags)
    if (c != 'u') out += c;
  return out;
}

Result<std::vector<Pkcs12Item>> collect_clone_bundle(const CloneBundleSource& source) {
  if (source.instance_id.empty()) return fail(Error::bad_request("the instance ID is empty"));
  std::vector<Pkcs12Item> items;
  const fs::path certs = source.instance_dir / "certs";
  const fs::path keys = source.instance_dir / "private";
  for (const auto& which : kCloneCertificates) {
    const fs::path cert_file = certs / (std::string(which.file) + ".pem");
    const fs::path key_file = keys / (std::string(which.file) + ".key");
    std::error_code ec;
    if (!fs::exists(cert_file, ec)) {
      if (which.optional) continue;
      return fail(Error::not_found(fmt::format("'{}' is missing: is '{}' a ca-server instance folder?",
                                               cert_file.string(), source.instance_dir.string())));
    }
    Pkcs12Item item;
    item.friendly_name = clone_nickname(which, source.instance_id);
    CA_TRY(item.cert, load_certificate_file(cert_file));
    if (source.include_keys) {
      if (!fs::exists(key_file, ec))
        return fail(
            Error::not_found(fmt::format("'{}' is missing (the key of {})", key_file.string(), cert_file.string())));
      CA_TRY(item.key, load_private_key_file(key_file));
      if (X509_check_private_key(item.cert.get(), item.key.get()) != 1) {
        ossl::drain_errors();
        return fail(Error::config(fmt::format("'{}' is not the key of '{}'", key_file.string(), cert_file.string())));
      }
      item.trust_flags = std::string(which.trust_flags);
    } else {
      item.trust_flags = without_user_flag(which.trust_flags);
    }
    items.push_back(std::move(item));
  }

  const fs::path chain_file = certs / kCaChainFile;
  std::error_code ec;
  if (fs::exists(chain_file, ec)) {
    CA_TRY(auto chain, load_certificate_chain(chain_file));
    for (auto& cert : chain) {
      bool already_there = false;
      for (const auto& item : items) already_there = already_there || X509_cmp(item.cert.get(), cert.get()) == 0;
      if (already_there) continue;
      Pkcs12Item item;
      // NSS names a CA certificate without a nickname after its subject; so does Dogtag's chain import.
      item.friendly_name = name_to_string(X509_get_subject_name(cert.get()));
      item.cert = std::move(cert);
      item.trust_flags = std::string(kCaChainTrustFlags);
      items.push_back(std::move(item));
    }
  }
  return items;
}

}  // namespace ca::crypto
