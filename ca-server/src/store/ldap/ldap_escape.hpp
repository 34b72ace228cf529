#pragma once
// Escaping of values that come from outside before they enter a filter or a DN.
#include <string>
#include <string_view>

namespace ca::store {

// RFC 4515 section 3: '*', '(', ')', '\' and NUL become \2a \28 \29 \5c \00 (and so does every
// byte >= 0x80 that is not part of valid text, to keep binary input harmless).
std::string escape_filter_value(std::string_view value);
// RFC 4514 section 2.4: escapes an attribute value for use inside a DN.
std::string escape_dn_value(std::string_view value);

}  // namespace ca::store
