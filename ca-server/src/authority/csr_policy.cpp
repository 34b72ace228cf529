#include "authority/csr_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpsl.h>
#include <openssl/objects.h>

#include "crypto/pem.hpp"

namespace ca::authority {

namespace {

bool contains(const std::vector<std::string>& v, std::string_view x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains_ignoring_case(const std::vector<std::string>& v, std::string_view x) {
  std::string lx = lower(x);
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return lower(s) == lx; });
}

bool is_c1_control(std::string_view utf8, std::size_t i) {  // U+0080..U+009F, encoded C2 80..C2 9F
  return static_cast<unsigned char>(utf8[i]) == 0xc2 && i + 1 < utf8.size() &&
         static_cast<unsigned char>(utf8[i + 1]) >= 0x80 && static_cast<unsigned char>(utf8[i + 1]) <= 0x9f;
}

// Control characters shown as \xNN (C1 ones as \u00NN), so that an error message never carries them.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (is_c1_control(s, i)) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Status check_key(const Profile& p, const crypto::PublicKeyInfo& key) {
  if (key.algorithm == "RSA") {
    if (key.bits < p.key.rsa_min_bits || key.bits > p.key.rsa_max_bits)
      return fail(Error::policy(fmt::format("profile {} accepts RSA keys of {} to {} bits; the CSR has {} bits", p.id,
                                            p.key.rsa_min_bits, p.key.rsa_max_bits, key.bits)));
    return ok();
  }
  if (key.algorithm == "EC") {
    if (!contains(p.key.ec_curves, key.curve))
      return fail(Error::policy(fmt::format("profile {} accepts EC curves {}; the CSR uses {}", p.id,
                                            joined(p.key.ec_curves), key.curve.empty() ? "an unnamed curve" : key.curve)));
    return ok();
  }
  if (key.algorithm == "Ed25519" && p.key.ed25519) return ok();
  return fail(Error::policy(fmt::format("profile {} does not accept {} keys", p.id, key.algorithm)));
}

// The address in binary (4 or 16 bytes used) and its family, or 0 when `s` is not an address.
int parse_ip(std::string_view s, std::array<unsigned char, 16>& bytes) {
  bytes.fill(0);
  if (s.find('\0') != std::string_view::npos) return 0;
  std::string text(s);
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) return AF_INET;
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) return AF_INET6;
  return 0;
}

bool is_ip(std::string_view s) {
  std::array<unsigned char, 16> bytes;
  return parse_ip(s, bytes) != 0;
}

// inet_ntop's form ("2001:db8::1"), the form CSR parsing produces; nullopt when not an address.
std::optional<std::string> canonical_ip(std::string_view s) {
  std::array<unsigned char, 16> bytes;
  int family = parse_ip(s, bytes);
  char text[INET6_ADDRSTRLEN];
  if (family == 0 || !inet_ntop(family, bytes.data(), text, sizeof text)) return std::nullopt;
  return std::string(text);
}

// A local part of printable ASCII without spaces, one '@', a host name after it.
bool is_email(std::string_view s) {
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size() || s.find('@', at + 1) != std::string_view::npos ||
      s.size() > 254)
    return false;
  for (unsigned char c : s.substr(0, at))
    if (c <= 0x20 || c >= 0x7f) return false;
  std::string_view domain = s.substr(at + 1);
  return !domain.starts_with("*") && is_valid_dns_name(domain);
}

// Loaded once per process and never freed. psl_latest picks the newest of the distribution's
// list (Debian: /usr/share/publicsuffix/public_suffix_list.dafsa) and libpsl's built-in copy.
const psl_ctx_t* public_suffix_list() {
  static const psl_ctx_t* const list = [] {
    const psl_ctx_t* latest = psl_latest(nullptr);
    return latest ? latest : psl_builtin();
  }();
  return list;
}

// "host.example.com" matches exactly that name, ".example.com" any name below example.com.
// Both sides are compared in lower case; `name` is already lower case.
bool matches_domain_pattern(std::string_view name, std::string_view pattern) {
  std::string p = lower(pattern);
  if (p.starts_with('.')) return name.size() > p.size() && name.ends_with(p);
  return name == p;
}

bool matches_any(std::string_view name, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& pattern) { return matches_domain_pattern(name, pattern); });
}

Status check_dns_name(const Profile& p, std::string_view name) {
  std::string n = lower(name);
  bool wildcard = n.starts_with("*.");
  if (n.find('*', wildcard ? 1 : 0) != std::string::npos)
    return fail(Error::policy(fmt::format(
        "profile {}: '{}' has a '*' that is not the whole leftmost label (only '*.example.com' is a wildcard)", p.id,
        printable(name))));
  if (!is_valid_dns_name(n))
    return fail(Error::policy(fmt::format("profile {}: '{}' is not a valid DNS name", p.id, printable(name))));
  std::string_view base = wildcard ? std::string_view(n).substr(2) : std::string_view(n);
  if (is_ip(base))
    return fail(Error::policy(fmt::format(
        "profile {}: the DNS name '{}' is an IP address; request it as an IP address subjectAltName", p.id, name)));
  if (wildcard) {
    if (!p.san.wildcards)
      return fail(Error::policy(fmt::format("profile {} does not allow wildcard DNS names ('{}')", p.id, name)));
    if (!public_suffix_list())
      return fail(Error::policy(fmt::format(
          "profile {}: the wildcard '{}' cannot be checked: no public suffix list is available", p.id, name)));
    if (is_public_suffix(base))
      return fail(Error::policy(fmt::format(
          "profile {}: the wildcard '{}' covers every name under the public suffix '{}'", p.id, name, base)));
  } else if (is_public_suffix(base)) {
    return fail(Error::policy(
        fmt::format("profile {}: '{}' is a public suffix or top-level domain, not a host name", p.id, name)));
  }
  if (!p.san.dns_names.empty() && !matches_any(n, p.san.dns_names))
    return fail(Error::policy(fmt::format("profile {} does not allow the DNS name '{}' (allowed: {})", p.id, name,
                                          joined(p.san.dns_names))));
  return ok();
}

// Returns the address in canonical form.
Result<std::string> check_ip(const Profile& p, std::string_view ip) {
  auto canonical = canonical_ip(ip);
  if (!canonical)
    return fail(Error::policy(fmt::format("profile {}: '{}' is not a valid IP address", p.id, printable(ip))));
  if (p.san.ip_ranges.empty()) return *canonical;
  for (const auto& text : p.san.ip_ranges) {
    auto range = parse_ip_range(text);
    if (!range) return fail(Error::policy(fmt::format("profile {}: san.ip_ranges: {}", p.id, range.error().message)));
    if (range->contains(*canonical)) return *canonical;
  }
  return fail(Error::policy(fmt::format("profile {} does not allow the IP address '{}' (allowed ranges: {})", p.id,
                                        *canonical, joined(p.san.ip_ranges))));
}

Status check_email(const Profile& p, std::string_view email) {
  if (!is_email(email))
    return fail(Error::policy(fmt::format("profile {}: '{}' is not a valid e-mail address", p.id, printable(email))));
  std::string domain = lower(email.substr(email.find('@') + 1));
  if (!p.san.email_domains.empty() && !matches_any(domain, p.san.email_domains))
    return fail(Error::policy(fmt::format("profile {} does not allow the e-mail address '{}' (allowed domains: {})",
                                          p.id, email, joined(p.san.email_domains))));
  return ok();
}

std::string attribute_name(const X509_NAME_ENTRY* e) {
  int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
  const char* sn = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
  if (sn) return sn;
  char oid[80];
  OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(e), 1);
  return oid;
}

// The value as UTF-8; C0 controls, DEL and C1 controls (U+0080..U+009F) refused.
Result<std::string> attribute_text(const Profile& p, const std::string& attr, const ASN1_STRING* value) {
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, value);
  if (len < 0) return fail(Error::policy(fmt::format("profile {}: the subject attribute {} is not valid text", p.id, attr)));
  std::string text(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || is_c1_control(text, i))
      return fail(Error::policy(fmt::format("profile {}: the subject attribute {} '{}' contains a control character",
                                            p.id, attr, printable(text))));
  }
  return text;
}

struct CheckedSubject {
  ossl::UniquePtr<X509_NAME> name;  // in the profile's attribute order
  std::string cn;                   // "" when there is none
};

// The names the CA gives its own instances' certificates: "Directory <instance id>" (a directory
// that replicates, hashes included, by that subject: store/replication.hpp) and "Subsystem
// <instance id>". No profile issues them, so nobody can hold one without holding the CA key.
Status check_not_reserved(const Profile& p, std::string_view cn) {
  for (std::string_view prefix : {"directory ", "subsystem "}) {
    if (cn.size() <= prefix.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < prefix.size() && same; ++i)
      same = std::tolower(static_cast<unsigned char>(cn[i])) == prefix[i];
    if (same && cn.find(' ', prefix.size()) == std::string_view::npos)
      return fail(Error::policy(fmt::format(
          "profile {}: the subject CN '{}' has the form of an instance certificate's ('Directory <id>', 'Subsystem <id>'), "
          "which only the CA's own instances get",
          p.id, cn)));
  }
  return ok();
}

Result<CheckedSubject> check_subject(const Profile& p, const X509_NAME* name) {
  CheckedSubject out;
  int count = X509_NAME_entry_count(name);
  if (count > 20)
    return fail(Error::policy(fmt::format("profile {}: the CSR subject has {} attributes; at most 20 are accepted", p.id, count)));
  int cns = 0;
  std::vector<std::string> attrs;
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    std::string attr = attribute_name(e);
    if (!contains(p.subject.allowed_attributes, attr))
      return fail(Error::policy(fmt::format("profile {} does not allow the subject attribute {} (allowed: {})", p.id, attr,
                                            joined(p.subject.allowed_attributes))));
    if (i > 0 && X509_NAME_ENTRY_set(e) == X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)))
      return fail(Error::policy(fmt::format(
          "profile {}: the subject attributes {} and {} share one RDN; multi-valued RDNs are not accepted", p.id,
          attrs.back(), attr)));
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(e);
    if (ASN1_STRING_length(value) == 0 || ASN1_STRING_length(value) > 256)
      return fail(Error::policy(fmt::format("profile {}: subject attribute {} must have 1 to 256 characters", p.id, attr)));
    CA_TRY(std::string text, attribute_text(p, attr, value));
    if (attr == "CN") {
      if (++cns > 1)
        return fail(Error::policy(fmt::format("profile {} accepts one CN; the subject has a second one, '{}'", p.id, text)));
      if (text.size() > 64)
        return fail(Error::policy(fmt::format(
            "profile {}: the subject CN '{}' is longer than 64 characters (RFC 5280 ub-common-name)", p.id, text)));
      CA_CHECK(check_not_reserved(p, text));
      out.cn = text;
    } else if (attr == "emailAddress") {
      CA_CHECK(check_email(p, text));
    }
    attrs.push_back(attr);
  }
  if (p.subject.require_cn && out.cn.empty())
    return fail(Error::policy(fmt::format("profile {} requires a CN in the subject", p.id)));

  // Rebuilt in the profile's order; repeated attributes (OU, DC) keep their relative order.
  out.name.reset(X509_NAME_new());
  if (!out.name) return fail(Error::crypto("cannot allocate the subject name"));
  std::vector<std::string> done;
  for (const auto& wanted : p.subject.allowed_attributes) {
    if (contains(done, wanted)) continue;
    done.push_back(wanted);
    for (int i = 0; i < count; ++i)
      if (attrs[static_cast<std::size_t>(i)] == wanted &&
          X509_NAME_add_entry(out.name.get(), X509_NAME_get_entry(name, i), -1, 0) != 1)
        return fail(Error::crypto("cannot build the subject name: " + ossl::drain_errors()));
  }
  return out;
}

// RFC 6125 clients ignore the CN, older ones still match it: a CN that is a host name or an
// address passes the same policy as a subjectAltName of its kind, and is copied into the
// subjectAltNames when the profile says so.
Status apply_cn(const Profile& p, const std::string& cn, IssuancePlan& plan) {
  if (cn.empty()) return ok();
  bool copy = p.san.copy_cn_to_dns;
  if (is_ip(cn)) {
    if (!p.san.ip) {
      if (!copy) return ok();
      return fail(Error::policy(
          fmt::format("profile {} does not allow IP addresses; the subject CN '{}' is one", p.id, cn)));
    }
    CA_TRY(std::string ip, check_ip(p, cn));
    if (copy && !contains(plan.ip_addresses, ip)) plan.ip_addresses.push_back(ip);
    return ok();
  }
  bool host_like = cn.find('.') != std::string::npos || cn.find('*') != std::string::npos;
  bool dns = is_valid_dns_name(cn) || cn.find('*') != std::string::npos;
  if (copy && dns) {
    if (!p.san.dns)
      return fail(Error::policy(fmt::format("profile {} does not allow DNS names; the subject CN '{}' is one", p.id, cn)));
    CA_CHECK(check_dns_name(p, cn));
    if (!contains_ignoring_case(plan.dns_names, cn)) plan.dns_names.insert(plan.dns_names.begin(), cn);
    return ok();
  }
  if (p.san.dns && dns && host_like) return check_dns_name(p, cn);
  if (copy && plan.dns_names.empty() && plan.ip_addresses.empty())
    return fail(Error::policy(fmt::format("profile {}: the CN '{}' is neither a DNS name nor an IP address", p.id, cn)));
  return ok();
}

}  // namespace

bool is_valid_dns_name(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    if (label == 0 && c == '-') return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.back() != '-';
}

bool is_public_suffix(std::string_view domain) {
  std::string d = lower(domain);
  const psl_ctx_t* list = public_suffix_list();
  // Without a list, at least a bare TLD is recognised.
  if (!list) return d.find('.') == std::string::npos;
  // PSL_TYPE_ANY: ICANN and private suffixes; the implicit "*" rule makes unknown TLDs suffixes too.
  return psl_is_public_suffix2(list, d.c_str(), PSL_TYPE_ANY) != 0;
}

bool IpRange::contains(std::string_view address) const {
  std::array<unsigned char, 16> bytes;
  if (parse_ip(address, bytes) != family || family == 0) return false;
  int full = prefix_length / 8, rest = prefix_length % 8;
  if (std::memcmp(bytes.data(), network.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (bytes[static_cast<std::size_t>(full)] & mask) == network[static_cast<std::size_t>(full)];
}

Result<IpRange> parse_ip_range(std::string_view cidr) {
  auto not_cidr = [&](std::string_view why) {
    return fail(Error::config(fmt::format("'{}' is not a CIDR block ({})", printable(cidr), why)));
  };
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return not_cidr("expected address/prefix-length, e.g. 10.0.0.0/8 or fd00::/8");
  IpRange range;
  range.family = parse_ip(cidr.substr(0, slash), range.network);
  if (range.family == 0) return not_cidr(fmt::format("'{}' is not an IP address", printable(cidr.substr(0, slash))));
  std::string_view digits = cidr.substr(slash + 1);
  int max = range.family == AF_INET ? 32 : 128;
  bool numeric = !digits.empty() && digits.size() <= 3 && (digits.size() == 1 || digits[0] != '0') &&
                 std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  int length = numeric ? std::stoi(std::string(digits)) : -1;
  if (length < 0 || length > max)
    return not_cidr(fmt::format("the prefix length of an {} block is 0 to {}", range.family == AF_INET ? "IPv4" : "IPv6", max));
  range.prefix_length = length;
  std::array<unsigned char, 16> masked{};
  for (int bit = 0; bit < length; ++bit)
    masked[static_cast<std::size_t>(bit / 8)] |= static_cast<unsigned char>(range.network[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8)));
  if (masked != range.network) {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(range.family, masked.data(), text, sizeof text);
    return not_cidr(fmt::format("host bits are set; the block is {}/{}", text, length));
  }
  return range;
}

Result<IssuancePlan> apply_profile(const Profile& p, const crypto::ParsedCsr& csr, std::chrono::system_clock::time_point now,
                                   const IssuanceOverrides& overrides) {
  if (!p.enabled) return fail(Error::policy(fmt::format("profile {} is disabled", p.id)));
  int validity_days = p.validity_days;
  if (overrides.validity_days) {
    if (*overrides.validity_days < 1 || *overrides.validity_days > p.validity_days)
      return fail(Error::policy(fmt::format("profile {} allows a validity of 1 to {} days; {} days were asked for", p.id,
                                            p.validity_days, *overrides.validity_days)));
    validity_days = *overrides.validity_days;
  }
  CA_CHECK(check_key(p, csr.key));

  IssuancePlan plan;
  CA_TRY(CheckedSubject subject, check_subject(p, csr.subject.get()));
  plan.subject = std::move(subject.name);
  plan.subject_text = crypto::name_to_string(plan.subject.get());

  const auto& dns_names = overrides.dns_names ? *overrides.dns_names : csr.dns_names;
  const auto& ip_addresses = overrides.ip_addresses ? *overrides.ip_addresses : csr.ip_addresses;
  const auto& emails = overrides.emails ? *overrides.emails : csr.emails;
  if (!dns_names.empty() && !p.san.dns)
    return fail(Error::policy(fmt::format("profile {} does not allow DNS names in subjectAltName ('{}')", p.id,
                                          printable(dns_names.front()))));
  if (!ip_addresses.empty() && !p.san.ip)
    return fail(Error::policy(fmt::format("profile {} does not allow IP addresses in subjectAltName ('{}')", p.id,
                                          printable(ip_addresses.front()))));
  if (!emails.empty() && !p.san.email)
    return fail(Error::policy(fmt::format("profile {} does not allow e-mail addresses in subjectAltName ('{}')", p.id,
                                          printable(emails.front()))));
  std::size_t max_sans = static_cast<std::size_t>(std::max(p.san.max, 0));
  std::size_t requested = dns_names.size() + ip_addresses.size() + emails.size();
  if (requested > max_sans)
    return fail(Error::policy(fmt::format("profile {} allows at most {} subjectAltNames; the request asks for {}", p.id,
                                          p.san.max, requested)));
  for (const auto& d : dns_names) {
    CA_CHECK(check_dns_name(p, d));
    plan.dns_names.push_back(d);
  }
  for (const auto& ip : ip_addresses) {
    CA_TRY(std::string canonical, check_ip(p, ip));
    plan.ip_addresses.push_back(std::move(canonical));
  }
  for (const auto& m : emails) {
    CA_CHECK(check_email(p, m));
    plan.emails.push_back(m);
  }
  CA_CHECK(apply_cn(p, subject.cn, plan));
  std::size_t sans = plan.dns_names.size() + plan.ip_addresses.size() + plan.emails.size();
  if (sans > max_sans)
    return fail(Error::policy(fmt::format("profile {} allows at most {} subjectAltNames; the request asks for {}", p.id,
                                          p.san.max, sans)));

  plan.key_usage = p.key_usage;
  // keyEncipherment only makes sense for RSA key transport.
  if (csr.key.algorithm != "RSA")
    std::erase(plan.key_usage, std::string("keyEncipherment"));
  if (plan.key_usage.empty()) plan.key_usage.push_back("digitalSignature");
  plan.extended_key_usage = p.extended_key_usage;
  // Back-date a little for clients with slow clocks.
  plan.not_before = now - std::chrono::minutes(5);
  plan.not_after = now + std::chrono::hours(24) * validity_days;
  return plan;
}

}  // namespace ca::authority
