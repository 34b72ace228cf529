#include "api/message_fields.hpp"

#include <limits>

#include <fmt/format.h>

namespace ca::api {

FieldPath FieldPath::field(std::string_view name) const {
  const std::string shown(name.substr(0, 64));
  return FieldPath(text_.empty() ? shown : fmt::format("{}.{}", text_, shown));
}

FieldPath FieldPath::element(std::size_t index) const { return FieldPath(fmt::format("{}[{}]", text_, index)); }

Error FieldPath::must_be(std::string_view what) const {
  if (text_.empty()) return Error::bad_request(fmt::format("the message must be {}", what));
  return Error::bad_request(fmt::format("field '{}' must be {}", text_, what));
}

Result<std::string> decode(Decoding<std::string>, const json::value& v, const FieldPath& at) {
  if (!v.is_string()) return fail(at.must_be("a string"));
  return std::string(v.get_string());
}

Result<bool> decode(Decoding<bool>, const json::value& v, const FieldPath& at) {
  if (!v.is_bool()) return fail(at.must_be("true or false"));
  return v.get_bool();
}

Result<int64_t> decode(Decoding<int64_t>, const json::value& v, const FieldPath& at) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(v.get_uint64());
  return fail(at.must_be("an integer"));
}

Result<int> decode(Decoding<int>, const json::value& v, const FieldPath& at) {
  CA_TRY(int64_t wide, decode(Decoding<int64_t>{}, v, at));
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max())
    return fail(at.must_be("an integer of 32 bits"));
  return static_cast<int>(wide);
}

Result<uint64_t> decode(Decoding<uint64_t>, const json::value& v, const FieldPath& at) {
  if (v.is_uint64()) return v.get_uint64();
  if (v.is_int64() && v.get_int64() >= 0) return static_cast<uint64_t>(v.get_int64());
  return fail(at.must_be("a non-negative integer"));
}

Result<double> decode(Decoding<double>, const json::value& v, const FieldPath& at) {
  if (!v.is_number()) return fail(at.must_be("a number"));
  return v.to_number<double>();
}

Result<FieldReader> FieldReader::open(const json::value& v, const FieldPath& at) {
  const json::object* object = v.if_object();
  if (!object) return fail(at.must_be("an object"));
  return FieldReader(*object, at);
}

Status FieldReader::refuse_unknown(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, value] : *object_) {
    bool is_known = false;
    for (std::string_view k : known) is_known = is_known || k == key;
    if (!is_known) return fail(Error::bad_request(fmt::format("unknown field '{}'", at_.field(key).text())));
  }
  return {};
}

std::string FieldReader::missing_field(std::string_view name) const {
  return fmt::format("field '{}' is required", at_.field(name).text());
}

}  // namespace ca::api
