#include "core/json_text.hpp"

#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

namespace ca {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence starting at text[i] (Unicode table 3-7), 0 if none.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const auto in = [](unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; };
  const unsigned char lead = byte(0);
  const std::size_t left = text.size() - i;
  if (lead < 0x80) return 1;
  if (in(lead, 0xC2, 0xDF)) return left >= 2 && in(byte(1), 0x80, 0xBF) ? 2 : 0;
  if (in(lead, 0xE0, 0xEF)) {
    if (left < 3) return 0;
    const unsigned char lo = lead == 0xE0 ? 0xA0 : 0x80, hi = lead == 0xED ? 0x9F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in(lead, 0xF0, 0xF4)) {
    if (left < 4) return 0;
    const unsigned char lo = lead == 0xF0 ? 0x90 : 0x80, hi = lead == 0xF4 ? 0x8F : 0xBF;
    return in(byte(1), lo, hi) && in(byte(2), 0x80, 0xBF) && in(byte(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

// Boost.JSON's own parser, as boost::json::parser builds it (a basic_parser feeding a value_stack),
// plus one set of keys per open object: a key seen twice in one object stops the parse.
class StrictJsonHandler {
 public:
  using error_code = boost::json::error_code;
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;

  bool on_document_begin(error_code&) {
    values_.reset();
    return true;
  }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t n, error_code&) {
    values_.push_array(n);
    return true;
  }
  bool on_object_begin(error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t n, error_code&) {
    keys_.pop_back();
    values_.push_object(n);
    return true;
  }
  bool on_string_part(boost::json::string_view s, std::size_t, error_code&) {
    values_.push_chars(s);
    return true;
  }
  bool on_string(boost::json::string_view s, std::size_t, error_code&) {
    values_.push_string(s);
    return true;
  }
  bool on_key_part(boost::json::string_view s, std::size_t, error_code&) {
    key_.append(s.data(), s.size());
    values_.push_chars(s);
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, error_code& ec) {
    key_.append(s.data(), s.size());
    if (!keys_.back().insert(key_).second) {
      duplicate_key_ = std::move(key_);
      ec = boost::json::error::syntax;
      return false;
    }
    key_.clear();
    values_.push_key(s);
    return true;
  }
  bool on_number_part(boost::json::string_view, error_code&) { return true; }
  bool on_int64(int64_t i, boost::json::string_view, error_code&) {
    values_.push_int64(i);
    return true;
  }
  bool on_uint64(uint64_t u, boost::json::string_view, error_code&) {
    values_.push_uint64(u);
    return true;
  }
  bool on_double(double d, boost::json::string_view, error_code&) {
    values_.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    values_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    values_.push_null();
    return true;
  }
  bool on_comment_part(boost::json::string_view, error_code&) { return true; }
  bool on_comment(boost::json::string_view, error_code&) { return true; }

  boost::json::value release() { return values_.release(); }
  // The key met twice, if that stopped the parse.
  const std::optional<std::string>& duplicate_key() const { return duplicate_key_; }

 private:
  boost::json::value_stack values_;
  std::vector<std::set<std::string, std::less<>>> keys_;
  std::string key_;
  std::optional<std::string> duplicate_key_;
};

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(text, i);
      if (length == 0) {
        out += kReplacement;
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F)
          out += fmt::format("\\u{:04x}", c);
        else
          out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

std::string json_string(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_json_string(out, text);
  return out;
}

Result<boost::json::value> parse_json_text(std::string_view text) {
  boost::json::basic_parser<StrictJsonHandler> parser(boost::json::parse_options{});
  boost::json::error_code ec;
  const std::size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = boost::json::error::extra_data;
  if (ec) {
    const auto& duplicate = parser.handler().duplicate_key();
    const std::string why =
        duplicate ? fmt::format("duplicate key '{}'", duplicate->substr(0, 64)) : std::string(ec.message());
    return fail(Error::bad_request(fmt::format("malformed JSON at offset {}: {}", consumed, why)));
  }
  return parser.handler().release();
}

Result<boost::json::object> parse_json_object_text(std::string_view text) {
  CA_TRY(boost::json::value value, parse_json_text(text));
  if (!value.is_object())
    return fail(
        Error::bad_request(fmt::format("expected a JSON object, got {}", boost::json::to_string(value.kind()))));
  return std::move(value.as_object());
}

}  // namespace ca
