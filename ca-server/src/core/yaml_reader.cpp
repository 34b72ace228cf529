#include "core/yaml_reader.hpp"

#include <fmt/format.h>

namespace ca {

Result<YamlReader> YamlReader::from_text(const std::string& text, const std::string& file) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    return YamlReader(root, file);
  } catch (const YAML::Exception& e) {
    return fail(Error::config(fmt::format("{}: line {}: not valid YAML: {}", file, e.mark.line + 1, e.msg)));
  }
}

Result<YamlReader> YamlReader::from_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return fail(Error::config(fmt::format("{}: file does not exist", file.string())));
  try {
    YAML::Node root = YAML::LoadFile(file.string());
    if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    return YamlReader(root, file.string());
  } catch (const YAML::BadFile&) {
    return fail(Error::config(fmt::format("{}: cannot be read", file.string())));
  } catch (const YAML::Exception& e) {
    return fail(Error::config(fmt::format("{}: line {}: not valid YAML: {}", file.string(), e.mark.line + 1, e.msg)));
  }
}

std::string YamlReader::key_path(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  if (key.empty()) return path_;
  return path_ + "." + std::string(key);
}

Error YamlReader::error_at(std::string_view key, std::string_view what) const {
  std::string where = key_path(key);
  return Error::config(fmt::format("{}: {}: {}", file_, where.empty() ? "(top level)" : where, what));
}

std::string YamlReader::fmt_expected(std::string_view expected, std::string_view got) {
  return fmt::format("expected {}, got '{}'", expected, got);
}

Status YamlReader::expect_map() const {
  if (!node_.IsDefined() || !node_.IsMap()) return fail(error_at("", "expected a mapping of keys to values"));
  return ok();
}

Status YamlReader::expect_keys(std::initializer_list<std::string_view> allowed) const {
  CA_CHECK(expect_map());
  for (const auto& kv : node_) {
    std::string k = kv.first.as<std::string>();
    bool known = false;
    for (auto a : allowed) known = known || (a == k);
    if (!known) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(error_at(k, fmt::format("unknown key (allowed here: {})", list)));
    }
  }
  return ok();
}

// yaml-cpp throws on most queries of an undefined node (a missing key): IsDefined() first.
bool YamlReader::has(std::string_view key) const {
  if (!node_.IsDefined() || !node_.IsMap()) return false;
  const YAML::Node& self = node_;
  YAML::Node n = self[std::string(key)];
  return n.IsDefined() && !n.IsNull();
}

YamlReader YamlReader::child(std::string_view key) const {
  if (!has(key)) return YamlReader(YAML::Node(), file_, key_path(key));
  const YAML::Node& self = node_;
  return YamlReader(self[std::string(key)], file_, key_path(key));
}

std::vector<YamlReader> YamlReader::sequence() const {
  std::vector<YamlReader> out;
  if (!node_.IsDefined() || !node_.IsSequence()) return out;
  for (std::size_t i = 0; i < node_.size(); ++i) out.emplace_back(node_[i], file_, fmt::format("{}[{}]", path_, i));
  return out;
}

std::vector<std::string> YamlReader::keys() const {
  std::vector<std::string> out;
  if (node_.IsDefined() && node_.IsMap())
    for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
  return out;
}

Status YamlReader::read(std::string_view key, std::string& out) const {
  if (!has(key)) return ok();
  YAML::Node n = node_[std::string(key)];
  if (!n.IsScalar()) return fail(error_at(key, "expected a string"));
  out = n.as<std::string>();
  return ok();
}

Status YamlReader::read(std::string_view key, int& out) const {
  if (!has(key)) return ok();
  YAML::Node n = node_[std::string(key)];
  try {
    if (!n.IsScalar()) throw YAML::Exception({}, "");
    out = n.as<int>();
  } catch (const YAML::Exception&) {
    return fail(error_at(key, fmt_expected("an integer", n.IsScalar() ? n.Scalar() : "(not a scalar)")));
  }
  return ok();
}

Status YamlReader::read(std::string_view key, uint64_t& out) const {
  if (!has(key)) return ok();
  YAML::Node n = node_[std::string(key)];
  try {
    if (!n.IsScalar() || (!n.Scalar().empty() && n.Scalar()[0] == '-')) throw YAML::Exception({}, "");
    out = n.as<uint64_t>();
  } catch (const YAML::Exception&) {
    return fail(error_at(key, fmt_expected("a non-negative integer", n.IsScalar() ? n.Scalar() : "(not a scalar)")));
  }
  return ok();
}

Status YamlReader::read(std::string_view key, uint16_t& out) const {
  uint64_t v = out;
  CA_CHECK(read(key, v));
  if (v > 65535) return fail(error_at(key, fmt_expected("a port number 0-65535", std::to_string(v))));
  out = static_cast<uint16_t>(v);
  return ok();
}

Status YamlReader::read(std::string_view key, bool& out) const {
  if (!has(key)) return ok();
  YAML::Node n = node_[std::string(key)];
  try {
    if (!n.IsScalar()) throw YAML::Exception({}, "");
    out = n.as<bool>();
  } catch (const YAML::Exception&) {
    return fail(error_at(key, fmt_expected("true or false", n.IsScalar() ? n.Scalar() : "(not a scalar)")));
  }
  return ok();
}

Status YamlReader::read(std::string_view key, std::vector<std::string>& out) const {
  if (!has(key)) return ok();
  YAML::Node n = node_[std::string(key)];
  if (!n.IsSequence()) return fail(error_at(key, "expected a list of strings"));
  out.clear();
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) return fail(error_at(key, fmt::format("item {}: expected a string", i)));
    out.push_back(n[i].as<std::string>());
  }
  return ok();
}

}  // namespace ca
