#include "authority/profile.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace ca::authority {

namespace {

Status check_names(const YamlReader& node, std::string_view key, const std::vector<std::string>& values,
                   std::initializer_list<std::string_view> allowed) {
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

}  // namespace

Result<Profile> parse_profile(const std::string& id, const YamlReader& node) {
  Profile p;
  p.id = id;
  p.name = id;
  CA_CHECK(node.expect_keys({"name", "description", "enabled", "validity_days", "key", "subject", "san", "key_usage",
                             "extended_key_usage"}));
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

  auto san = node.child("san");
  if (!san.is_null()) CA_CHECK(san.expect_keys({"dns", "ip", "email", "max", "copy_cn_to_dns"}));
  CA_CHECK(san.read("dns", p.san.dns));
  CA_CHECK(san.read("ip", p.san.ip));
  CA_CHECK(san.read("email", p.san.email));
  CA_CHECK(san.read("max", p.san.max));
  CA_CHECK(san.read("copy_cn_to_dns", p.san.copy_cn_to_dns));

  CA_CHECK(node.read("key_usage", p.key_usage));
  CA_CHECK(check_names(node, "key_usage", p.key_usage,
                       {"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement"}));
  CA_CHECK(node.read("extended_key_usage", p.extended_key_usage));
  CA_CHECK(check_names(node, "extended_key_usage", p.extended_key_usage,
                       {"serverAuth", "clientAuth", "codeSigning", "emailProtection", "timeStamping", "OCSPSigning"}));
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
  std::ifstream in(file);
  if (!in) return fail(Error::config(fmt::format("{}: profiles file cannot be read", file.string())));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_profiles_text(ss.str(), file.string());
}

const std::string& default_profiles_yaml() {
  static const std::string text = R"(# Certificate profiles. Loaded into the directory at init; the directory copy is authoritative.
caServerCert:
  name: Server Certificate Enrollment
  description: TLS server certificate; the CN is copied into the DNS subjectAltName.
  validity_days: 398
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [CN, O, OU, L, ST, C]}
  san: {dns: true, ip: true, email: false, max: 100, copy_cn_to_dns: true}
  key_usage: [digitalSignature, keyEncipherment]
  extended_key_usage: [serverAuth]
caUserCert:
  name: User Certificate Enrollment
  description: Client authentication and S/MIME for a person.
  validity_days: 365
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [CN, O, OU, L, ST, C, emailAddress, UID]}
  san: {dns: false, ip: false, email: true, max: 10, copy_cn_to_dns: false}
  key_usage: [digitalSignature, nonRepudiation, keyEncipherment]
  extended_key_usage: [clientAuth, emailProtection]
caAgentCert:
  name: Agent Certificate
  description: TLS client certificate of a CA agent.
  enabled: false
  validity_days: 730
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [CN, O, OU, UID, emailAddress]}
  san: {dns: false, ip: false, email: true, max: 5, copy_cn_to_dns: false}
  key_usage: [digitalSignature]
  extended_key_usage: [clientAuth]
)";
  return text;
}

}  // namespace ca::authority
