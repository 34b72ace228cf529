#include "core/caller_text.hpp"

#include <fmt/format.h>

namespace ca {

std::string caller_text(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  // Back up to the first byte of a character (UTF-8 continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + "…";
}

namespace {
bool is_c1_control(std::string_view utf8, std::size_t i) {  // U+0080..U+009F, encoded C2 80..C2 9F
  return static_cast<unsigned char>(utf8[i]) == 0xc2 && i + 1 < utf8.size() &&
         static_cast<unsigned char>(utf8[i + 1]) >= 0x80 && static_cast<unsigned char>(utf8[i + 1]) <= 0x9f;
}

}  // namespace

// Control characters shown as \xNN (C1 ones as \u00NN), so that an error message never carries them.
std::string printable_text(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (is_c1_control(s, i)) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(s[++i]));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool has_control_character(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || is_c1_control(text, i)) return true;
  }
  return false;
}

}  // namespace ca
