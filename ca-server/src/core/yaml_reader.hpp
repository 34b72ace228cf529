#pragma once
// Strict YAML reading: every map is checked for unknown keys, every scalar for its type,
// and every error names the file and the dotted key path.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/error.hpp"

namespace ca {

class YamlReader {
 public:
  YamlReader(const YAML::Node& node, std::string file, std::string path = "")
      : node_(node), file_(std::move(file)), path_(std::move(path)) {}

  static Result<YamlReader> from_text(const std::string& text, const std::string& file);
  static Result<YamlReader> from_file(const std::filesystem::path& file);

  bool is_map() const { return node_.IsDefined() && node_.IsMap(); }
  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

  // Fails when the map has a key outside `allowed`.
  Status expect_keys(std::initializer_list<std::string_view> allowed) const;
  Status expect_map() const;
  bool has(std::string_view key) const;
  YamlReader child(std::string_view key) const;
  std::vector<YamlReader> sequence() const;
  std::vector<std::string> keys() const;

  Status read(std::string_view key, std::string& out) const;
  Status read(std::string_view key, int& out) const;
  Status read(std::string_view key, uint64_t& out) const;
  Status read(std::string_view key, uint16_t& out) const;
  Status read(std::string_view key, bool& out) const;
  Status read(std::string_view key, std::vector<std::string>& out) const;
  // Reads a string and maps it through `parse`; `expected` describes the allowed values.
  template <typename T, typename Parse>
  Status read_enum(std::string_view key, T& out, Parse parse, std::string_view expected) const {
    std::string text;
    CA_CHECK(read(key, text));
    if (!has(key)) return ok();
    auto parsed = parse(text);
    if (!parsed) return fail(error_at(key, fmt_expected(expected, text)));
    out = *parsed;
    return ok();
  }

  Error error_at(std::string_view key, std::string_view what) const;

 private:
  static std::string fmt_expected(std::string_view expected, std::string_view got);
  std::string key_path(std::string_view key) const;
  YAML::Node node_;
  std::string file_;
  std::string path_;
};

}  // namespace ca
