#include "http/url.hpp"

#include <fmt/format.h>

namespace ca::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c != '%') {
      out += c;
    } else {
      const bool complete = i + 2 < text.size();
      const int hi = complete ? hex_value(text[i + 1]) : -1;
      const int lo = complete ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return fail(Error::bad_request(fmt::format("malformed percent-encoding in '{}'", text)));
      }
      if (hi == 0 && lo == 0) return fail(Error::bad_request("encoded NUL (%00) in the request target"));
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_query(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    const auto eq = piece.find('=');
    CA_TRY(auto key, percent_decode(piece.substr(0, eq), true));
    CA_TRY(auto value, percent_decode(eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1), true));
    params.emplace(std::move(key), std::move(value));
  }
  return params;
}

}  // namespace ca::http
