#pragma once
// JSON text: string literals for the line-oriented logs (access log, audit log) that stay valid
// whatever bytes a client sent, and the strict reading of JSON texts (log lines, request and answer
// bodies) with Boost.JSON.
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/error.hpp"

namespace ca {

// Appends `text` as a JSON string literal (RFC 8259): quote, backslash and control characters are
// escaped, and every byte that is not part of well-formed UTF-8 becomes U+FFFD, so that a line
// holding a hostile request path is still one valid JSON value.
void append_json_string(std::string& out, std::string_view text);
[[nodiscard]] std::string json_string(std::string_view text);

// Parses one JSON text (RFC 8259) with Boost.JSON, strictly: nothing but whitespace around the
// value, no comments or trailing commas, well-formed UTF-8, no unpaired surrogate in a \u escape,
// no raw control character in a string, and no key twice in one object (Boost.JSON would keep the
// last one silently; a reader of logs or requests must not see two meanings). A refusal is
// bad_request naming the offset.
[[nodiscard]] Result<boost::json::value> parse_json_text(std::string_view text);
// The same, for a text that must be one object.
[[nodiscard]] Result<boost::json::object> parse_json_object_text(std::string_view text);

}  // namespace ca
