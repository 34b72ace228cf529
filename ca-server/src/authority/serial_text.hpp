#pragma once
// Serial numbers and request ids as users type them: "0x1a2b" (hex) or "6699" (decimal),
// as Dogtag accepts them; always printed as "0x" + lowercase hex.
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca::authority {

// Returns canonical lowercase hex without prefix or leading zeros.
Result<std::string> parse_number_text(std::string_view text, std::string_view what);
inline std::string display_hex(std::string_view canonical_hex) { return "0x" + std::string(canonical_hex); }

}  // namespace ca::authority
