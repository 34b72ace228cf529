#include "authority/issuance/profile.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "authority/access/roles.hpp"
#include "authority/issuance/name_syntax.hpp"
#include "core/config.hpp"
#include "core/files.hpp"

namespace ca::authority {

namespace {

Status check_names(const YamlReader& node, std::string_view key, const std::vector<std::string>& values,
                   std::span<const std::string_view> allowed) {
  for (const auto& v : values) {
    bool known = false;
    for (auto a : allowed) known = known || a == v;
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(node.error_at(key, fmt::format("unknown value '{}' (allowed: {})", v, list)));
    }
  }
  return ok();
}

Status check_names(const YamlReader& node, std::string_view key, const std::vector<std::string>& values,
                   std::initializer_list<std::string_view> allowed) {
  return check_names(node, key, values, std::span<const std::string_view>(allowed.begin(), allowed.size()));
}

Status check_unique(const YamlReader& node, std::string_view key, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (std::find(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(i), values[i]) !=
        values.begin() + static_cast<std::ptrdiff_t>(i))
      return fail(node.error_at(key, fmt::format("'{}' is listed twice", values[i])));
  return ok();
}

// `auth:` is one authenticator name or a list of them.
Status read_auth(const YamlReader& node, std::vector<std::string>& out) {
  if (!node.has("auth")) return ok();
  std::vector<std::string> names;
  std::string one;
  if (node.read("auth", one))
    names.push_back(one);
  else if (!node.read("auth", names))
    return fail(node.error_at("auth", "expected an authenticator name or a list of them"));
  if (names.empty())
    return fail(node.error_at("auth", fmt::format("lists no authenticator (allowed: {})",
                                                  fmt::join(enrollment_authenticator_names(), ", "))));
  CA_CHECK(check_names(node, "auth", names, enrollment_authenticator_names()));
  CA_CHECK(check_unique(node, "auth", names));
  out = std::move(names);
  return ok();
}

// "example.com" (exactly) or ".example.com" (below it): no wildcards, no empty labels.
bool is_domain_pattern(std::string_view pattern) {
  if (pattern.starts_with('.')) pattern.remove_prefix(1);
  return pattern.find('*') == std::string_view::npos && is_valid_dns_name(pattern);
}

Status check_domain_patterns(const YamlReader& node, std::string_view key, const std::vector<std::string>& patterns) {
  for (const auto& p : patterns) {
    std::string_view rest = p;
    if (rest.starts_with("*.") && rest.find('*', 1) == std::string_view::npos && is_domain_pattern(rest.substr(1)))
      return fail(node.error_at(
          key, fmt::format("'{}' has a '*': write '{}' for the names below {}", p, rest.substr(1), rest.substr(2))));
    if (!is_domain_pattern(p))
      return fail(node.error_at(key, fmt::format("'{}' is not a domain name pattern ('example.com' for exactly that "
                                                 "name, '.example.com' for the names below it)",
                                                 p)));
  }
  return ok();
}

Status check_ip_ranges(const YamlReader& node, std::string_view key, const std::vector<std::string>& ranges) {
  for (const auto& r : ranges)
    if (auto parsed = parse_ip_range(r); !parsed) return fail(node.error_at(key, parsed.error().message));
  return ok();
}

}  // namespace

bool Profile::accepts(std::string_view authenticator) const {
  return std::find(auth.begin(), auth.end(), authenticator) != auth.end();
}

Result<Profile> parse_profile(const std::string& id, const YamlReader& node) {
  Profile p;
  p.id = id;
  p.name = id;
  CA_CHECK(node.expect_keys({"name", "description", "enabled", "validity_days", "key", "subject", "san", "key_usage",
                             "extended_key_usage", "auth", "role", "archival"}));
  CA_CHECK(node.read("name", p.name));
  CA_CHECK(node.read("description", p.description));
  CA_CHECK(node.read("enabled", p.enabled));
  CA_CHECK(node.read("validity_days", p.validity_days));
  if (p.validity_days < 1 || p.validity_days > 36500) return fail(node.error_at("validity_days", "expected 1..36500"));

  auto key = node.child("key");
  if (!key.is_null()) CA_CHECK(key.expect_keys({"rsa_min_bits", "rsa_max_bits", "ec_curves", "ed25519"}));
  CA_CHECK(key.read("rsa_min_bits", p.key.rsa_min_bits));
  CA_CHECK(key.read("rsa_max_bits", p.key.rsa_max_bits));
  CA_CHECK(key.read("ec_curves", p.key.ec_curves));
  CA_CHECK(key.read("ed25519", p.key.ed25519));
  if (p.key.rsa_min_bits < 2048) return fail(key.error_at("rsa_min_bits", "must be at least 2048"));
  CA_CHECK(check_names(key, "ec_curves", p.key.ec_curves, {"P-256", "P-384", "P-521"}));

  auto subject = node.child("subject");
  if (!subject.is_null()) CA_CHECK(subject.expect_keys({"require_cn", "allowed_attributes"}));
  CA_CHECK(subject.read("require_cn", p.subject.require_cn));
  CA_CHECK(subject.read("allowed_attributes", p.subject.allowed_attributes));
  CA_CHECK(check_names(subject, "allowed_attributes", p.subject.allowed_attributes,
                       {"CN", "O", "OU", "L", "ST", "C", "emailAddress", "serialNumber", "DC", "UID"}));
  CA_CHECK(check_unique(subject, "allowed_attributes", p.subject.allowed_attributes));

  auto san = node.child("san");
  if (!san.is_null())
    CA_CHECK(san.expect_keys(
        {"dns", "ip", "email", "max", "copy_cn_to_dns", "dns_names", "wildcards", "ip_ranges", "email_domains"}));
  CA_CHECK(san.read("dns", p.san.dns));
  CA_CHECK(san.read("ip", p.san.ip));
  CA_CHECK(san.read("email", p.san.email));
  CA_CHECK(san.read("max", p.san.max));
  CA_CHECK(san.read("copy_cn_to_dns", p.san.copy_cn_to_dns));
  CA_CHECK(san.read("dns_names", p.san.dns_names));
  CA_CHECK(check_domain_patterns(san, "dns_names", p.san.dns_names));
  CA_CHECK(san.read("wildcards", p.san.wildcards));
  CA_CHECK(san.read("ip_ranges", p.san.ip_ranges));
  CA_CHECK(check_ip_ranges(san, "ip_ranges", p.san.ip_ranges));
  CA_CHECK(san.read("email_domains", p.san.email_domains));
  CA_CHECK(check_domain_patterns(san, "email_domains", p.san.email_domains));

  CA_CHECK(node.read("key_usage", p.key_usage));
  CA_CHECK(check_names(node, "key_usage", p.key_usage,
                       {"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement"}));
  CA_CHECK(node.read("extended_key_usage", p.extended_key_usage));
  CA_CHECK(check_names(node, "extended_key_usage", p.extended_key_usage,
                       {"serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping", "OCSPSigning"}));

  auto archival = node.child("archival");
  if (!archival.is_null())
    CA_CHECK(archival.expect_keys({"server_keygen", "client_keys", "key_type", "recovery_approvals"}));
  CA_CHECK(archival.read("server_keygen", p.archival.server_keygen));
  CA_CHECK(archival.read("client_keys", p.archival.client_keys));
  CA_CHECK(archival.read("key_type", p.archival.key_type));
  if (!parse_key_type(p.archival.key_type))
    return fail(archival.error_at("key_type", "expected ec-p256, ec-p384, rsa-2048, rsa-3072 or ed25519"));
  CA_CHECK(archival.read("recovery_approvals", p.archival.recovery_approvals));
  if (p.archival.recovery_approvals < 1 || p.archival.recovery_approvals > 10)
    return fail(archival.error_at("recovery_approvals", "expected 1..10"));

  CA_CHECK(read_auth(node, p.auth));
  CA_CHECK(node.read("role", p.role));
  if (!p.role.empty() && !role_named(p.role))
    return fail(node.error_at("role", fmt::format("unknown value '{}' (allowed: agent, administrator, auditor, or "
                                                  "\"\" for none)",
                                                  p.role.substr(0, 64))));
  // A role certificate is issued only after an administrator's approval (never at once).
  if (!p.role.empty())
    for (const auto& a : p.auth)
      if (a != kAgentApproval)
        return fail(node.error_at("auth", fmt::format("a profile with role '{}' cannot accept '{}': role certificates "
                                                      "are issued only after an administrator's approval",
                                                      p.role, a)));
  return p;
}

Result<Profile> parse_profile_text(const std::string& id, const std::string& yaml, const std::string& origin) {
  CA_TRY(YamlReader root, YamlReader::from_text(yaml, origin));
  CA_TRY(Profile p, parse_profile(id, root));
  p.definition_yaml = yaml;
  return p;
}

Result<std::vector<Profile>> parse_profiles_text(const std::string& yaml, const std::string& origin) {
  CA_TRY(YamlReader root, YamlReader::from_text(yaml, origin));
  CA_CHECK(root.expect_map());
  YAML::Node doc = YAML::Load(yaml);
  std::vector<Profile> out;
  for (const auto& id : root.keys()) {
    for (char c : id)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
        return fail(root.error_at(id, "a profile id has only letters, digits, '-' and '_'"));
    CA_TRY(Profile p, parse_profile(id, root.child(id)));
    YAML::Emitter emitter;
    emitter << doc[id];
    p.definition_yaml = emitter.c_str();
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<Profile>> load_profiles_file(const std::filesystem::path& file) {
  auto text = read_file(file);
  if (!text) return fail(Error::config(fmt::format("{}: profiles file cannot be read", file.string())));
  return parse_profiles_text(*text, file.string());
}

const std::string& default_profiles_yaml() {
  static const std::string text =
      R"(# Certificate profiles. Loaded into the directory at init; the directory copy is authoritative.
# The subject of an issued certificate lists its attributes in the order of allowed_attributes.
caServerCert:
  name: Server Certificate Enrollment
  description: TLS server certificate; the CN is copied into the DNS subjectAltName.
  validity_days: 398
  auth: [agent_approval, enrollment_code, client_certificate]
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [C, ST, L, O, OU, CN]}
  san: {dns: true, ip: true, email: false, max: 100, copy_cn_to_dns: true, wildcards: false}
  key_usage: [digitalSignature, keyEncipherment]
  extended_key_usage: [serverAuth]
caUserCert:
  name: User Certificate Enrollment
  description: Client authentication and S/MIME for a person.
  validity_days: 365
  auth: [agent_approval, enrollment_code, client_certificate]
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [C, ST, L, O, OU, UID, emailAddress, CN]}
  san: {dns: false, ip: false, email: true, max: 10, copy_cn_to_dns: false}
  key_usage: [digitalSignature, nonRepudiation, keyEncipherment]
  extended_key_usage: [clientAuth, emailProtection]
caAgentCert:
  name: Agent Certificate
  description: TLS client certificate of a CA agent; its holder becomes an agent.
  enabled: true
  validity_days: 730
  auth: agent_approval
  role: agent
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [O, OU, UID, emailAddress, CN]}
  san: {dns: false, ip: false, email: true, max: 5, copy_cn_to_dns: false}
  key_usage: [digitalSignature]
  extended_key_usage: [clientAuth]
caAdminCert:
  name: Administrator Certificate
  description: TLS client certificate of a CA administrator (manages agents, auditors and instances).
  enabled: true
  validity_days: 730
  auth: agent_approval
  role: administrator
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [O, OU, UID, emailAddress, CN]}
  san: {dns: false, ip: false, email: true, max: 5, copy_cn_to_dns: false}
  key_usage: [digitalSignature]
  extended_key_usage: [clientAuth]
caAuditorCert:
  name: Auditor Certificate
  description: TLS client certificate of an auditor (reads and verifies the audit trail).
  enabled: true
  validity_days: 730
  auth: agent_approval
  role: auditor
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [O, OU, UID, emailAddress, CN]}
  san: {dns: false, ip: false, email: true, max: 5, copy_cn_to_dns: false}
  key_usage: [digitalSignature]
  extended_key_usage: [clientAuth]
)";
  return text;
}

}  // namespace ca::authority
