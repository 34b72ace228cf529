#pragma once
// Strict decoding of the JSON messages in api/: each message type T has
//   void tag_invoke(boost::json::value_from_tag, boost::json::value&, const T&)   (encoding)
//   Result<T> decode(Decoding<T>, const boost::json::value&, const FieldPath&)      (decoding)
// and gets boost::json::value_to<T> from the second (it throws what decode returns). Callers use
// decode_message / parse_message: a missing field, a field of the wrong type or (for requests) an
// unknown field is Error::bad_request naming the field by its path ("instances[2].replica_id").
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>

#include "core/error.hpp"
#include "core/json_text.hpp"

namespace ca::api {

namespace json = boost::json;

// Selects the decoder of T (overloads of `decode`, found by argument-dependent lookup).
template <typename T>
struct Decoding {};

// Where a value sits in a message: "" for the message itself, "instances[2].replica_id" deeper.
class FieldPath {
 public:
  FieldPath() = default;
  [[nodiscard]] FieldPath field(std::string_view name) const;
  [[nodiscard]] FieldPath element(std::size_t index) const;
  [[nodiscard]] const std::string& text() const { return text_; }
  // bad_request: "field 'x' must be a string" (or "the message must be an object" at the top).
  [[nodiscard]] Error must_be(std::string_view what) const;

 private:
  explicit FieldPath(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

Result<std::string> decode(Decoding<std::string>, const json::value& v, const FieldPath& at);
Result<bool> decode(Decoding<bool>, const json::value& v, const FieldPath& at);
Result<int> decode(Decoding<int>, const json::value& v, const FieldPath& at);
Result<int64_t> decode(Decoding<int64_t>, const json::value& v, const FieldPath& at);
Result<uint64_t> decode(Decoding<uint64_t>, const json::value& v, const FieldPath& at);
Result<double> decode(Decoding<double>, const json::value& v, const FieldPath& at);

template <typename T>
Result<std::vector<T>> decode(Decoding<std::vector<T>>, const json::value& v, const FieldPath& at) {
  const json::array* items = v.if_array();
  if (!items) return fail(at.must_be("an array"));
  std::vector<T> out;
  out.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    CA_TRY(T item, decode(Decoding<T>{}, (*items)[i], at.element(i)));
    out.push_back(std::move(item));
  }
  return out;
}

// The fields of one JSON object of a message.
class FieldReader {
 public:
  [[nodiscard]] static Result<FieldReader> open(const json::value& v, const FieldPath& at);

  // A field that must be there, of type T.
  template <typename T>
  [[nodiscard]] Result<T> required(std::string_view name) const {
    const json::value* v = object_->if_contains(name);
    if (!v) return fail(Error::bad_request(missing_field(name)));
    return decode(Decoding<T>{}, *v, at_.field(name));
  }
  // A field that may be absent or null; when there, of type T.
  template <typename T>
  [[nodiscard]] Result<std::optional<T>> optional(std::string_view name) const {
    const json::value* v = object_->if_contains(name);
    if (!v || v->is_null()) return std::optional<T>();
    CA_TRY(T value, decode(Decoding<T>{}, *v, at_.field(name)));
    return std::optional<T>(std::move(value));
  }
  // For requests: a field not in `known` is refused (a client's typo must not pass silently).
  [[nodiscard]] Status refuse_unknown(std::initializer_list<std::string_view> known) const;

 private:
  FieldReader(const json::object& object, FieldPath at) : object_(&object), at_(std::move(at)) {}
  [[nodiscard]] std::string missing_field(std::string_view name) const;
  const json::object* object_;
  FieldPath at_;
};

template <typename T>
[[nodiscard]] Result<T> decode_message(const json::value& v) {
  return decode(Decoding<T>{}, v, FieldPath{});
}

template <typename T>
[[nodiscard]] Result<T> parse_message(std::string_view text) {
  CA_TRY(json::value v, parse_json_text(text));
  return decode_message<T>(v);
}

template <typename T>
[[nodiscard]] json::value encode_message(const T& message) {
  return json::value_from(message);
}

// boost::json::value_to<T> for the message types of this namespace: the strict decoder, its
// refusal thrown as std::invalid_argument (for code that works with Boost.JSON's own conversions;
// ours calls decode_message and gets the error as a value).
template <typename T>
requires requires(const json::value& v) { decode(Decoding<T>{}, v, FieldPath{}); }
T tag_invoke(json::value_to_tag<T>, const json::value& v) {
  auto decoded = decode_message<T>(v);
  if (!decoded) throw std::invalid_argument(decoded.error().message);
  return std::move(*decoded);
}

// Writes `value` under `name` only when there is one (absent, not null, on the wire).
template <typename T>
void put_if(json::object& o, std::string_view name, const std::optional<T>& value) {
  if (value) o[name] = json::value_from(*value);
}

}  // namespace ca::api
