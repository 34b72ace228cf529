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
// Canonical hex as decimal digits (Dogtag's XML interface numbers requests and serials in decimal).
std::string decimal_text(std::string_view canonical_hex);

// 127 bits from the CSPRNG as a positive, full-length serial (canonical hex): for certificates
// issued outside the number ranges (`serial_generator: random`, an operator's or an instance's own).
Result<std::string> random_serial_hex();

}  // namespace ca::authority
