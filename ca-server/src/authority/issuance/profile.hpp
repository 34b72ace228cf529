#pragma once
// Certificate profiles: what a request under a profile may ask for and what the certificate gets.
// Defined in YAML, stored in the directory (one entry per profile) so every instance uses the same.
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/yaml_reader.hpp"

namespace ca::authority {

// How a request under a profile may be authorized: the names of the enrollment authenticators
// (authority/issuance/enrollment_authenticators.hpp, where each is an object and this list is
// defined). agent_approval: it waits for a CA agent; enrollment_code: a one-time code issued by an
// agent; client_certificate: the requester's valid certificate from this CA; none: anyone, no
// check at all (only when a profile says so explicitly). In the order messages list them.
std::span<const std::string_view> enrollment_authenticator_names();
inline constexpr std::string_view kAgentApproval = "agent_approval";

struct KeyPolicy {
  int rsa_min_bits = 2048;
  int rsa_max_bits = 8192;
  std::vector<std::string> ec_curves{"P-256", "P-384", "P-521"};
  bool ed25519 = true;
};

struct SubjectPolicy {
  bool require_cn = true;
  // Also the order of the issued subject (DER order, most general first), whatever the CSR's order.
  std::vector<std::string> allowed_attributes{"C", "ST", "L", "O", "OU", "CN"};
};

struct SanPolicy {
  bool dns = true;
  bool ip = true;
  bool email = false;
  int max = 100;
  bool copy_cn_to_dns = true;  // RFC 6125 clients ignore the CN; put it in the SAN too
  // Allowed DNS names, matched case-insensitively: "host.example.com" is exactly that name,
  // ".example.com" any name below example.com (not example.com itself). Empty: any valid name.
  std::vector<std::string> dns_names;
  // "*.example.com" names at all: the whole leftmost label only, never over a public suffix.
  bool wildcards = false;
  // CIDR blocks ("10.0.0.0/8", "fd00::/8", "192.0.2.7/32"). Empty: any address.
  std::vector<std::string> ip_ranges;
  // Mail domains: "example.com" is exactly that domain, ".example.com" the domains below it. Empty: any.
  std::vector<std::string> email_domains;
};

// Key archival (docs/key-archival.md): whether the CA may generate the key and archive it, or take
// a key the client sends encrypted to the transport certificate, and how many distinct agents must
// approve the recovery of a key archived under this profile.
struct ArchivalPolicy {
  bool server_keygen = false;
  bool client_keys = false;
  std::string key_type = "ec-p256";  // what server-side key generation makes (ec-p256, rsa-2048, ...)
  int recovery_approvals = 1;
  bool any() const { return server_keygen || client_keys; }
};

struct Profile {
  std::string id;
  std::string name;
  std::string description;
  bool enabled = true;
  int validity_days = 398;
  KeyPolicy key;
  SubjectPolicy subject;
  SanPolicy san;
  std::vector<std::string> key_usage{"digitalSignature", "keyEncipherment"};
  std::vector<std::string> extended_key_usage{"serverAuth"};
  // Who may enroll (YAML `auth:`, one name or a list). Never empty.
  std::vector<std::string> auth{std::string(kAgentApproval)};
  // "", "agent", "administrator" or "auditor" (authority/access/roles.hpp): a certificate issued under a
  // role profile makes its holder a member of the role's group. Only agent_approval is accepted,
  // and only an administrator who is neither the subject nor the requester may approve.
  std::string role;
  ArchivalPolicy archival;
  std::string definition_yaml;  // the source, as stored in the directory

  bool accepts(std::string_view authenticator) const;  // listed in `auth`
};

// Parses one profile (the mapping under its id). Errors name the file and key.
Result<Profile> parse_profile(const std::string& id, const YamlReader& node);
// Parses a profile stored in the directory (its YAML text).
Result<Profile> parse_profile_text(const std::string& id, const std::string& yaml, const std::string& origin);
// Parses a profiles file: a mapping of profile id -> definition.
Result<std::vector<Profile>> load_profiles_file(const std::filesystem::path& file);
Result<std::vector<Profile>> parse_profiles_text(const std::string& yaml, const std::string& origin);
// The profiles an instance starts with: caServerCert, caUserCert, caAgentCert.
const std::string& default_profiles_yaml();

}  // namespace ca::authority
