#pragma once
// Decoding of the parts of a request target (RFC 3986 percent-encoding, form-style query strings).
#include <map>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca::http {

// "%41%20b" -> "A b"; with plus_is_space (query strings) '+' is a space too. A malformed escape
// or an encoded NUL (which C APIs below us would truncate at) is a bad_request.
Result<std::string> percent_decode(std::string_view text, bool plus_is_space);

// "a=1&b=x%20y&flag" -> {a: "1", b: "x y", flag: ""}. Empty pieces are skipped; the first of
// repeated keys wins.
Result<std::map<std::string, std::string>> parse_query(std::string_view query);

}  // namespace ca::http
