#include "authority/csr_policy.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/objects.h>

namespace ca::authority {

namespace {

bool contains(const std::vector<std::string>& v, std::string_view x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
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

bool is_ip(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool is_email(const std::string& s) {
  auto at = s.find('@');
  return at != std::string::npos && at > 0 && at + 1 < s.size() && s.find('@', at + 1) == std::string::npos &&
         s.size() <= 254 && is_valid_dns_name(s.substr(at + 1));
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
  return label > 0;
}

Result<IssuancePlan> apply_profile(const Profile& p, const crypto::ParsedCsr& csr,
                                   std::chrono::system_clock::time_point now) {
  if (!p.enabled) return fail(Error::policy(fmt::format("profile {} is disabled", p.id)));
  CA_CHECK(check_key(p, csr.key));

  IssuancePlan plan;
  std::string cn;
  const X509_NAME* name = csr.subject.get();
  int count = X509_NAME_entry_count(name);
  if (count > 20) return fail(Error::policy(fmt::format("the CSR subject has {} attributes; at most 20 are accepted", count)));
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = nid == NID_undef ? nullptr : OBJ_nid2sn(nid);
    std::string attr = sn ? sn : "unknown";
    if (!contains(p.subject.allowed_attributes, attr))
      return fail(Error::policy(fmt::format("profile {} does not allow the subject attribute {} (allowed: {})", p.id, attr,
                                            joined(p.subject.allowed_attributes))));
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(e);
    if (ASN1_STRING_length(value) == 0 || ASN1_STRING_length(value) > 256)
      return fail(Error::policy(fmt::format("subject attribute {} must have 1 to 256 characters", attr)));
    if (nid == NID_commonName) {
      unsigned char* utf8 = nullptr;
      int len = ASN1_STRING_to_UTF8(&utf8, value);
      if (len < 0) return fail(Error::policy("the subject CN is not valid text"));
      cn.assign(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
      OPENSSL_free(utf8);
      if (cn.size() > 64) return fail(Error::policy("the subject CN is longer than 64 characters (RFC 5280 ub-common-name)"));
    }
  }
  if (p.subject.require_cn && cn.empty())
    return fail(Error::policy(fmt::format("profile {} requires a CN in the subject", p.id)));
  plan.subject.reset(X509_NAME_dup(name));
  if (!plan.subject) return fail(Error::crypto("cannot copy the subject name"));
  plan.subject_text = csr.subject_text;

  if (!csr.dns_names.empty() && !p.san.dns)
    return fail(Error::policy(fmt::format("profile {} does not allow DNS names in subjectAltName", p.id)));
  if (!csr.ip_addresses.empty() && !p.san.ip)
    return fail(Error::policy(fmt::format("profile {} does not allow IP addresses in subjectAltName", p.id)));
  if (!csr.emails.empty() && !p.san.email)
    return fail(Error::policy(fmt::format("profile {} does not allow e-mail addresses in subjectAltName", p.id)));
  for (const auto& d : csr.dns_names)
    if (!is_valid_dns_name(d)) return fail(Error::policy(fmt::format("'{}' is not a valid DNS name", d)));
  for (const auto& ip : csr.ip_addresses)
    if (!is_ip(ip)) return fail(Error::policy(fmt::format("'{}' is not a valid IP address", ip)));
  for (const auto& m : csr.emails)
    if (!is_email(m)) return fail(Error::policy(fmt::format("'{}' is not a valid e-mail address", m)));
  plan.dns_names = csr.dns_names;
  plan.ip_addresses = csr.ip_addresses;
  plan.emails = csr.emails;
  if (p.san.copy_cn_to_dns && !cn.empty() && !contains(plan.dns_names, cn)) {
    if (is_valid_dns_name(cn)) plan.dns_names.insert(plan.dns_names.begin(), cn);
    else if (is_ip(cn) && p.san.ip && !contains(plan.ip_addresses, cn)) plan.ip_addresses.push_back(cn);
    else if (plan.dns_names.empty() && plan.ip_addresses.empty())
      return fail(Error::policy(fmt::format("profile {}: the CN '{}' is neither a DNS name nor an IP address", p.id, cn)));
  }
  std::size_t sans = plan.dns_names.size() + plan.ip_addresses.size() + plan.emails.size();
  if (static_cast<int>(sans) > p.san.max)
    return fail(Error::policy(fmt::format("profile {} allows at most {} subjectAltNames; the CSR asks for {}", p.id,
                                          p.san.max, sans)));

  plan.key_usage = p.key_usage;
  // keyEncipherment only makes sense for RSA key transport.
  if (csr.key.algorithm != "RSA")
    std::erase(plan.key_usage, std::string("keyEncipherment"));
  if (plan.key_usage.empty()) plan.key_usage.push_back("digitalSignature");
  plan.extended_key_usage = p.extended_key_usage;
  // Back-date a little for clients with slow clocks.
  plan.not_before = now - std::chrono::minutes(5);
  plan.not_after = now + std::chrono::hours(24) * p.validity_days;
  return plan;
}

}  // namespace ca::authority
