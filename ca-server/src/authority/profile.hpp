#pragma once
// Certificate profiles: what a request under a profile may ask for and what the certificate gets.
// Defined in YAML, stored in the directory (one entry per profile) so every instance uses the same.
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/yaml_reader.hpp"

namespace ca::authority {

struct KeyPolicy {
  int rsa_min_bits = 2048;
  int rsa_max_bits = 8192;
  std::vector<std::string> ec_curves{"P-256", "P-384", "P-521"};
  bool ed25519 = true;
};

struct SubjectPolicy {
  bool require_cn = true;
  std::vector<std::string> allowed_attributes{"CN", "O", "OU", "L", "ST", "C"};
};

struct SanPolicy {
  bool dns = true;
  bool ip = true;
  bool email = false;
  int max = 100;
  bool copy_cn_to_dns = true;  // RFC 6125 clients ignore the CN; put it in the SAN too
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
  std::string definition_yaml;  // the source, as stored in the directory
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
