#include "authority/issuance/csr_policy.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/objects.h>

#include "authority/issuance/name_syntax.hpp"
#include "core/caller_text.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {

bool contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

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

Status check_key(const Profile& p, const crypto::PublicKeyInfo& key) {
  if (key.algorithm == "RSA") {
    if (key.bits < p.key.rsa_min_bits || key.bits > p.key.rsa_max_bits)
      return fail(Error::policy(fmt::format("profile {} accepts RSA keys of {} to {} bits; the CSR has {} bits", p.id,
                                            p.key.rsa_min_bits, p.key.rsa_max_bits, key.bits)));
    return ok();
  }
  if (key.algorithm == "EC") {
    if (!contains(p.key.ec_curves, key.curve))
      return fail(
          Error::policy(fmt::format("profile {} accepts EC curves {}; the CSR uses {}", p.id, joined(p.key.ec_curves),
                                    key.curve.empty() ? "an unnamed curve" : key.curve)));
    return ok();
  }
  if (key.algorithm == "Ed25519" && p.key.ed25519) return ok();
  return fail(Error::policy(fmt::format("profile {} does not accept {} keys", p.id, key.algorithm)));
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
        printable_text(name))));
  if (!is_valid_dns_name(n))
    return fail(Error::policy(fmt::format("profile {}: '{}' is not a valid DNS name", p.id, printable_text(name))));
  std::string_view base = wildcard ? std::string_view(n).substr(2) : std::string_view(n);
  if (is_ip(base))
    return fail(Error::policy(fmt::format(
        "profile {}: the DNS name '{}' is an IP address; request it as an IP address subjectAltName", p.id, name)));
  if (wildcard) {
    if (!p.san.wildcards)
      return fail(Error::policy(fmt::format("profile {} does not allow wildcard DNS names ('{}')", p.id, name)));
    if (!have_public_suffix_list())
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
    return fail(Error::policy(
        fmt::format("profile {} does not allow the DNS name '{}' (allowed: {})", p.id, name, joined(p.san.dns_names))));
  return ok();
}

// Returns the address in canonical form.
Result<std::string> check_ip(const Profile& p, std::string_view ip) {
  auto canonical = canonical_ip(ip);
  if (!canonical)
    return fail(Error::policy(fmt::format("profile {}: '{}' is not a valid IP address", p.id, printable_text(ip))));
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
    return fail(
        Error::policy(fmt::format("profile {}: '{}' is not a valid e-mail address", p.id, printable_text(email))));
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
  if (len < 0)
    return fail(Error::policy(fmt::format("profile {}: the subject attribute {} is not valid text", p.id, attr)));
  std::string text(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  if (has_control_character(text))
    return fail(Error::policy(fmt::format("profile {}: the subject attribute {} '{}' contains a control character",
                                          p.id, attr, printable_text(text))));
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
      return fail(
          Error::policy(fmt::format("profile {}: the subject CN '{}' has the form of an instance certificate's "
                                    "('Directory <id>', 'Subsystem <id>'), "
                                    "which only the CA's own instances get",
                                    p.id, cn)));
  }
  return ok();
}

Result<CheckedSubject> check_subject(const Profile& p, const X509_NAME* name) {
  CheckedSubject out;
  int count = X509_NAME_entry_count(name);
  if (count > 20)
    return fail(Error::policy(
        fmt::format("profile {}: the CSR subject has {} attributes; at most 20 are accepted", p.id, count)));
  int cns = 0;
  std::vector<std::string> attrs;
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    std::string attr = attribute_name(e);
    if (!contains(p.subject.allowed_attributes, attr))
      return fail(Error::policy(fmt::format("profile {} does not allow the subject attribute {} (allowed: {})", p.id,
                                            attr, joined(p.subject.allowed_attributes))));
    if (i > 0 && X509_NAME_ENTRY_set(e) == X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i - 1)))
      return fail(Error::policy(
          fmt::format("profile {}: the subject attributes {} and {} share one RDN; multi-valued RDNs are not accepted",
                      p.id, attrs.back(), attr)));
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(e);
    if (ASN1_STRING_length(value) == 0 || ASN1_STRING_length(value) > 256)
      return fail(
          Error::policy(fmt::format("profile {}: subject attribute {} must have 1 to 256 characters", p.id, attr)));
    CA_TRY(std::string text, attribute_text(p, attr, value));
    if (attr == "CN") {
      if (++cns > 1)
        return fail(
            Error::policy(fmt::format("profile {} accepts one CN; the subject has a second one, '{}'", p.id, text)));
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
      return fail(
          Error::policy(fmt::format("profile {} does not allow IP addresses; the subject CN '{}' is one", p.id, cn)));
    }
    CA_TRY(std::string ip, check_ip(p, cn));
    if (copy && !contains(plan.ip_addresses, ip)) plan.ip_addresses.push_back(ip);
    return ok();
  }
  bool host_like = cn.find('.') != std::string::npos || cn.find('*') != std::string::npos;
  bool dns = is_valid_dns_name(cn) || cn.find('*') != std::string::npos;
  if (copy && dns) {
    if (!p.san.dns)
      return fail(
          Error::policy(fmt::format("profile {} does not allow DNS names; the subject CN '{}' is one", p.id, cn)));
    CA_CHECK(check_dns_name(p, cn));
    if (!contains_ignoring_case(plan.dns_names, cn)) plan.dns_names.insert(plan.dns_names.begin(), cn);
    return ok();
  }
  if (p.san.dns && dns && host_like) return check_dns_name(p, cn);
  if (copy && plan.dns_names.empty() && plan.ip_addresses.empty())
    return fail(
        Error::policy(fmt::format("profile {}: the CN '{}' is neither a DNS name nor an IP address", p.id, cn)));
  return ok();
}

}  // namespace

Result<IssuancePlan> apply_profile(const Profile& p, const crypto::ParsedCsr& csr,
                                   std::chrono::system_clock::time_point now, const IssuanceOverrides& overrides) {
  if (!p.enabled) return fail(Error::policy(fmt::format("profile {} is disabled", p.id)));
  int validity_days = p.validity_days;
  if (overrides.validity_days) {
    if (*overrides.validity_days < 1 || *overrides.validity_days > p.validity_days)
      return fail(Error::policy(fmt::format("profile {} allows a validity of 1 to {} days; {} days were asked for",
                                            p.id, p.validity_days, *overrides.validity_days)));
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
                                          printable_text(dns_names.front()))));
  if (!ip_addresses.empty() && !p.san.ip)
    return fail(Error::policy(fmt::format("profile {} does not allow IP addresses in subjectAltName ('{}')", p.id,
                                          printable_text(ip_addresses.front()))));
  if (!emails.empty() && !p.san.email)
    return fail(Error::policy(fmt::format("profile {} does not allow e-mail addresses in subjectAltName ('{}')", p.id,
                                          printable_text(emails.front()))));
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
    return fail(Error::policy(
        fmt::format("profile {} allows at most {} subjectAltNames; the request asks for {}", p.id, p.san.max, sans)));

  plan.key_usage = p.key_usage;
  // keyEncipherment only makes sense for RSA key transport.
  if (csr.key.algorithm != "RSA") std::erase(plan.key_usage, std::string("keyEncipherment"));
  if (plan.key_usage.empty()) plan.key_usage.push_back("digitalSignature");
  plan.extended_key_usage = p.extended_key_usage;
  // Back-date a little for clients with slow clocks.
  plan.not_before = now - std::chrono::minutes(5);
  plan.not_after = now + std::chrono::hours(24) * validity_days;
  return plan;
}

}  // namespace ca::authority
