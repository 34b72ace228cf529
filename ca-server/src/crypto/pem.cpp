#include "crypto/pem.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

namespace ca::crypto {

namespace {

namespace fs = std::filesystem;

// Largest certificate or key file we read; anything bigger is not one.
constexpr off_t kMaxFileBytes = 1 << 20;

// "cannot <action> '<path>': <strerror>", with errno read before anything can change it.
Error system_error(std::string_view action, const fs::path& path) {
  int e = errno;
  return Error::io(
      fmt::format("cannot {} '{}': {}", action, path.string(), std::error_code(e, std::generic_category()).message()));
}

ossl::UniquePtr<BIO> read_bio(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(INT_MAX)) return nullptr;
  return ossl::UniquePtr<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Never prompts on a terminal for a passphrase (OpenSSL's default callback would).
int refuse_passphrase(char*, int, int, void*) { return -1; }

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // close() reports late write-back errors (NFS): the caller must see them.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// Removes the temporary file unless the rename went through.
class TempFileGuard {
 public:
  explicit TempFileGuard(fs::path path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void disarm() { path_.clear(); }

 private:
  fs::path path_;
};

Status write_bytes_atomic(const fs::path& path, std::span<const char> bytes, mode_t mode) {
  if (!path.has_filename()) return fail(Error::io(fmt::format("cannot write '{}': not a file name", path.string())));
  // The temporary file sits next to the target so that rename() stays within one file system.
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  static std::atomic<unsigned> sequence{0};
  fs::path tmp;
  UniqueFd fd;
  for (int attempt = 0;; ++attempt) {
    tmp = dir / fmt::format(".{}.tmp-{}-{}", path.filename().string(), ::getpid(), sequence++);
    // O_EXCL: never reuse (or follow a symlink planted at) an existing name. The umask can only
    // narrow `mode`, so the file is never more open than asked for, even before fchmod.
    fd = UniqueFd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (fd) break;
    if (errno != EEXIST || attempt == 100) return fail(system_error("create", tmp));
  }
  TempFileGuard guard(tmp);
  if (::fchmod(fd.get(), mode) != 0) return fail(system_error(fmt::format("set mode {:o} on", mode), tmp));
  for (std::size_t done = 0; done < bytes.size();) {
    ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(system_error("write", tmp));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail(system_error("fsync", tmp));
  if (fd.close() != 0) return fail(system_error("close", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(system_error(fmt::format("rename '{}' to", tmp.string()), path));
  guard.disarm();
  // The rename itself is durable only once the directory is synced.
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd || ::fsync(dir_fd.get()) != 0) return fail(system_error("fsync folder", dir));
  return ok();
}

// Reads a whole (small) file in one buffer, sized up front so that key bytes are never copied around.
Result<std::string> read_small_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail(system_error("open", path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(system_error("stat", path));
  if (!S_ISREG(st.st_mode)) return fail(Error::io(fmt::format("'{}' is not a regular file", path.string())));
  if (st.st_size > kMaxFileBytes)
    return fail(Error::io(fmt::format("'{}' is {} bytes, too large for a certificate or key", path.string(),
                                      static_cast<long long>(st.st_size))));
  std::string out(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(system_error("read", path));
    if (n == 0) break;  // shrank while we read
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

std::string fingerprint_hex(X509* cert, const EVP_MD* md) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, md, buf, &len) != 1) {
    ossl::drain_errors();
    return {};
  }
  return to_hex({buf, len});
}

// Name attributes live under these arcs; anything else (a digest OID, say) is not a name type.
bool is_name_attribute(int nid) {
  char oid[128];
  if (OBJ_obj2txt(oid, sizeof oid, OBJ_nid2obj(nid), 1) <= 0) return false;
  std::string_view o(oid);
  for (std::string_view arc : {"2.5.4.", "0.9.2342.19200300.100.1.", "1.2.840.113549.1.9.", "1.3.6.1.4.1.311.60.2.1."})
    if (o.starts_with(arc)) return true;
  return false;
}

// RFC 4514 says type names are case-insensitive; OpenSSL's short names are "CN" but "street".
int attribute_nid(std::string_view type) {
  std::string spelled(type);
  int nid = OBJ_txt2nid(spelled.c_str());
  for (auto change : {::toupper, ::tolower}) {
    if (nid != NID_undef) break;
    for (char& c : spelled) c = static_cast<char>(change(static_cast<unsigned char>(c)));
    nid = OBJ_txt2nid(spelled.c_str());
  }
  ossl::drain_errors();  // a failed lookup leaves nothing useful behind
  return nid != NID_undef && is_name_attribute(nid) ? nid : NID_undef;
}

struct Ava {
  std::string type;  // as written, for messages
  int nid;
  std::string value;
  bool joins_previous;  // "+": same RDN as the one before
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

Result<std::vector<Ava>> split_rfc4514(std::string_view text) {
  std::vector<Ava> avas;
  std::size_t i = 0;
  bool joins = false;
  const std::size_t n = text.size();
  while (true) {
    std::size_t eq = text.find('=', i);
    std::size_t sep = text.find_first_of(",+", i);
    if (eq == std::string_view::npos || (sep != std::string_view::npos && sep < eq))
      return fail(Error::bad_request(
          fmt::format("distinguished name '{}': expected type=value at '{}'", text, text.substr(i, sep - i))));
    Ava ava{std::string(trim(text.substr(i, eq - i))), NID_undef, {}, joins};
    if (ava.type.empty())
      return fail(Error::bad_request(fmt::format("distinguished name '{}': missing attribute type", text)));
    ava.nid = attribute_nid(ava.type);
    if (ava.nid == NID_undef)
      return fail(
          Error::bad_request(fmt::format("distinguished name '{}': unknown attribute type '{}'", text, ava.type)));
    i = eq + 1;
    while (i < n && text[i] == ' ') ++i;  // spaces after '=' are not part of the value
    std::size_t significant = 0;          // value length without unescaped trailing spaces
    bool first_escaped = false;
    for (; i < n && text[i] != ',' && text[i] != '+'; ++i) {
      char c = text[i];
      if (c == '\\') {
        if (i + 1 >= n)
          return fail(Error::bad_request(fmt::format("distinguished name '{}': dangling '\\' in {}", text, ava.type)));
        int hi = hex_value(text[i + 1]), lo = i + 2 < n ? hex_value(text[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
          c = static_cast<char>(hi << 4 | lo);
          i += 2;
        } else if (std::string_view(",+\"\\<>;=# ").find(text[i + 1]) != std::string_view::npos) {
          c = text[++i];
        } else {
          return fail(Error::bad_request(
              fmt::format("distinguished name '{}': invalid escape '\\{}' in {}", text, text[i + 1], ava.type)));
        }
        if (ava.value.empty()) first_escaped = true;
        ava.value += c;
        significant = ava.value.size();
        continue;
      }
      if (c == '"' || c == ';' || c == '<' || c == '>')
        return fail(Error::bad_request(
            fmt::format("distinguished name '{}': '{}' in {} must be escaped as '\\{}'", text, c, ava.type, c)));
      ava.value += c;
      if (c != ' ') significant = ava.value.size();
    }
    ava.value.resize(significant);
    if (ava.value.empty())
      return fail(Error::bad_request(fmt::format("distinguished name '{}': empty value for {}", text, ava.type)));
    if (ava.value.front() == '#' && !first_escaped)
      return fail(Error::bad_request(
          fmt::format("distinguished name '{}': hex-encoded (#...) values are not supported ({})", text, ava.type)));
    avas.push_back(std::move(ava));
    if (i == n) return avas;
    joins = text[i] == '+';
    if (++i == n) return fail(Error::bad_request(fmt::format("distinguished name '{}' ends with a separator", text)));
  }
}

}  // namespace

std::string to_hex(std::span<const unsigned char> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

Result<ossl::UniquePtr<X509>> parse_certificate_pem(std::string_view pem) {
  auto bio = read_bio(pem);
  if (!bio) return fail(Error::crypto("cannot buffer the certificate: " + ossl::drain_errors()));
  ossl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!cert) return fail(Error::bad_request("not a PEM certificate: " + ossl::drain_errors()));
  return cert;
}

Result<ossl::UniquePtr<X509>> parse_certificate_der(std::span<const uint8_t> der) {
  if (der.size() > static_cast<std::size_t>(LONG_MAX)) return fail(Error::bad_request("certificate is too large"));
  const unsigned char* p = der.data();
  ossl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return fail(Error::bad_request("not a DER certificate: " + ossl::drain_errors()));
  if (p != der.data() + der.size())
    return fail(
        Error::bad_request(fmt::format("certificate is followed by {} unexpected bytes", der.data() + der.size() - p)));
  return cert;
}

std::string certificate_to_pem(X509* cert) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    ossl::drain_errors();
    return {};
  }
  return bio_contents(bio.get());
}

std::vector<uint8_t> certificate_to_der(X509* cert) {
  int len = i2d_X509(cert, nullptr);
  if (len <= 0) {
    ossl::drain_errors();
    return {};
  }
  std::vector<uint8_t> der(static_cast<std::size_t>(len));
  unsigned char* p = der.data();
  if (i2d_X509(cert, &p) != len) {
    ossl::drain_errors();
    return {};
  }
  return der;
}

Result<ossl::UniquePtr<EVP_PKEY>> parse_private_key_pem(std::string_view pem) {
  if (pem.find("ENCRYPTED") != std::string_view::npos)
    return fail(Error::bad_request("private key is encrypted; an unencrypted PKCS#8 key is required"));
  auto bio = read_bio(pem);
  if (!bio) return fail(Error::crypto("cannot buffer the private key: " + ossl::drain_errors()));
  ossl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  if (!key) return fail(Error::bad_request("not a PEM private key: " + ossl::drain_errors()));
  return key;
}

std::string private_key_to_pem(EVP_PKEY* key) {
  // The secure-memory BIO wipes its buffer when freed; only the returned copy remains.
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ossl::drain_errors();
    return {};
  }
  return bio_contents(bio.get());
}

Result<ossl::UniquePtr<X509>> load_certificate_file(const fs::path& path) {
  CA_TRY(std::string pem, read_small_file(path));
  auto cert = parse_certificate_pem(pem);
  if (!cert)
    return fail(
        Error::config(fmt::format("'{}' does not hold a certificate: {}", path.string(), cert.error().message)));
  return std::move(*cert);
}

Result<ossl::UniquePtr<EVP_PKEY>> load_private_key_file(const fs::path& path) {
  CA_TRY(std::string pem, read_small_file(path));
  auto key = parse_private_key_pem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key)
    return fail(Error::config(fmt::format("'{}' does not hold a private key: {}", path.string(), key.error().message)));
  return std::move(*key);
}

Status write_text_file_atomic(const fs::path& path, std::string_view content, mode_t mode) {
  return write_bytes_atomic(path, content, mode);
}

Status write_private_key_file(const fs::path& path, EVP_PKEY* key) {
  // Written straight from the wiping BIO: the PEM never sits in an ordinary heap buffer.
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return fail(
        Error::crypto(fmt::format("cannot encode the private key for '{}': {}", path.string(), ossl::drain_errors())));
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return write_bytes_atomic(path, {data, static_cast<std::size_t>(len)}, 0600);
}

Status write_certificate_file(const fs::path& path, X509* cert) {
  std::string pem = certificate_to_pem(cert);
  if (pem.empty()) return fail(Error::crypto(fmt::format("cannot encode the certificate for '{}'", path.string())));
  return write_bytes_atomic(path, pem, 0644);
}

std::string sha1_fingerprint_hex(X509* cert) { return fingerprint_hex(cert, EVP_sha1()); }
std::string sha256_fingerprint_hex(X509* cert) { return fingerprint_hex(cert, EVP_sha256()); }

std::string name_to_string(const X509_NAME* name) {
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  // Without ESC_MSB, UTF-8 is printed as UTF-8 (RFC 4514 allows it) rather than as \XX escapes.
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
    ossl::drain_errors();
    return {};
  }
  return bio_contents(bio.get());
}

Result<ossl::UniquePtr<X509_NAME>> parse_name(std::string_view text) {
  if (trim(text).empty()) return fail(Error::bad_request("distinguished name is empty"));
  CA_TRY(std::vector<Ava> avas, split_rfc4514(text));
  ossl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (!name) return fail(Error::crypto("cannot allocate a name: " + ossl::drain_errors()));
  // The string lists the most specific RDN first, the encoding lists it last, and the printer
  // reverses every entry (also inside a multi-valued RDN): so add them all in reverse order.
  for (std::size_t k = avas.size(); k-- > 0;) {
    const Ava& a = avas[k];
    bool same_rdn_as_added = k + 1 < avas.size() && avas[k + 1].joins_previous;
    if (a.value.size() > static_cast<std::size_t>(INT_MAX) ||
        X509_NAME_add_entry_by_NID(name.get(), a.nid, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(a.value.data()),
                                   static_cast<int>(a.value.size()), -1, same_rdn_as_added ? -1 : 0) != 1)
      return fail(Error::bad_request(
          fmt::format("distinguished name '{}': invalid value for {}: {}", text, a.type, ossl::drain_errors())));
  }
  return name;
}

std::string serial_to_hex(const ASN1_INTEGER* serial) {
  const unsigned char* data = ASN1_STRING_get0_data(serial);
  std::string hex = to_hex({data, static_cast<std::size_t>(ASN1_STRING_length(serial))});
  std::size_t first = hex.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  hex.erase(0, first);
  if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) hex.insert(hex.begin(), '-');
  return hex;
}

Result<ossl::UniquePtr<ASN1_INTEGER>> serial_from_hex(std::string_view hex) {
  if (hex.empty()) return fail(Error::bad_request("serial number is empty"));
  for (char c : hex)
    if (hex_value(c) < 0) return fail(Error::bad_request(fmt::format("serial number '{}' is not hexadecimal", hex)));
  std::string_view digits = hex.substr(std::min(hex.find_first_not_of('0'), hex.size()));
  if (digits.empty()) return fail(Error::bad_request("serial number must not be zero (RFC 5280)"));
  // 20 octets of DER content, including the sign bit: 40 digits only when the first is below 8.
  if (digits.size() > 40 || (digits.size() == 40 && hex_value(digits.front()) >= 8))
    return fail(
        Error::bad_request(fmt::format("serial number '{}' is longer than the 20 octets RFC 5280 allows", hex)));
  // Big-endian magnitude, as ASN1_INTEGER stores it; an odd digit count gets a leading nibble.
  std::vector<unsigned char> bytes((digits.size() + 1) / 2);
  std::size_t d = 0, b = 0;
  if (digits.size() % 2) bytes[b++] = static_cast<unsigned char>(hex_value(digits[d++]));
  for (; d < digits.size(); d += 2)
    bytes[b++] = static_cast<unsigned char>(hex_value(digits[d]) << 4 | hex_value(digits[d + 1]));
  ossl::UniquePtr<ASN1_INTEGER> serial(ASN1_INTEGER_new());
  if (!serial || ASN1_STRING_set(serial.get(), bytes.data(), static_cast<int>(bytes.size())) != 1)
    return fail(Error::crypto("cannot allocate a serial number: " + ossl::drain_errors()));
  return serial;
}

}  // namespace ca::crypto
