#pragma once
// The body of every JSON error answer of ca-server (http/responses.hpp renders it; ca-clone's
// MasterClient reads its message): {"error": error_code_name(code), "message": ...}.
#include <string>

#include "api/message_fields.hpp"

namespace ca::api {

struct ErrorAnswer {
  std::string error;    // "bad_request", "conflict", ... (core/error.hpp's error_code_name)
  std::string message;  // for people
};

void tag_invoke(json::value_from_tag, json::value& v, const ErrorAnswer& m);
Result<ErrorAnswer> decode(Decoding<ErrorAnswer>, const json::value& v, const FieldPath& at);

}  // namespace ca::api
