#include "store/ldap/ldap_escape.hpp"

#include <fmt/format.h>

namespace ca::store {

std::string escape_filter_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0 || c < 0x20 || c == 0x7f)
      out += fmt::format("\\{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string escape_dn_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (std::size_t i = 0; i < value.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    bool edge_space = c == ' ' && (i == 0 || i + 1 == value.size());
    bool leading_hash = c == '#' && i == 0;
    if (c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' || c == '=' || edge_space ||
        leading_hash) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == 0 || c < 0x20 || c == 0x7f) {
      out += fmt::format("\\{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace ca::store
