#include "api/error_answer.hpp"

namespace ca::api {

void tag_invoke(json::value_from_tag, json::value& v, const ErrorAnswer& m) {
  json::object o;
  o["error"] = m.error;
  o["message"] = m.message;
  v = std::move(o);
}

Result<ErrorAnswer> decode(Decoding<ErrorAnswer>, const json::value& v, const FieldPath& at) {
  CA_TRY(FieldReader in, FieldReader::open(v, at));
  ErrorAnswer m;
  CA_TRY(m.error, in.required<std::string>("error"));
  CA_TRY(m.message, in.required<std::string>("message"));
  return m;
}

}  // namespace ca::api
