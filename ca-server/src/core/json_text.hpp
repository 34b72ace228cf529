#pragma once
// JSON text for the line-oriented logs (access log, audit log): writing string literals that stay
// valid whatever bytes a client sent, and reading back the flat objects those logs are made of.
// Boost.JSON lives in the http layer; the logs below it need only this much.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca {

// Appends `text` as a JSON string literal (RFC 8259): quote, backslash and control characters are
// escaped, and every byte that is not part of well-formed UTF-8 becomes U+FFFD, so that a line
// holding a hostile request path is still one valid JSON value.
void append_json_string(std::string& out, std::string_view text);
[[nodiscard]] std::string json_string(std::string_view text);

// One value of a flat object: a string (unescaped) or a number (its text as written).
struct FlatJsonValue {
  enum class Kind { string, number };
  Kind kind = Kind::string;
  std::string text;

  // The value as a non-negative integer, if it is one (a number without sign, fraction or exponent).
  [[nodiscard]] std::optional<uint64_t> as_unsigned() const;
};

using FlatJsonObject = std::map<std::string, FlatJsonValue, std::less<>>;

// Parses one JSON object whose values are strings or numbers only (no nesting, no literals),
// with nothing but whitespace around it. Duplicate keys, unpaired surrogates in \u escapes and
// raw control characters in strings are errors (bad_request naming the offset).
[[nodiscard]] Result<FlatJsonObject> parse_flat_json_object(std::string_view text);

}  // namespace ca
