#include "http/responses.hpp"

#include <fmt/format.h>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include "api/error_answer.hpp"
#include "core/caller_text.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"

namespace ca::http {

namespace bhttp = beast::http;

namespace {
constexpr std::size_t kMaxErrorMessageBytes = 512;
}  // namespace

Response json_response(bhttp::status status, const boost::json::value& body, unsigned version, bool keep_alive) {
  return bytes_response(status, boost::json::serialize(body), "application/json", version, keep_alive);
}

Response bytes_response(bhttp::status status, std::string body, std::string_view content_type, unsigned version,
                        bool keep_alive) {
  Response res{status, version};
  res.set(bhttp::field::content_type, content_type);
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

bhttp::status status_for(ErrorCode code) {
  switch (code) {
    // A profile rejecting a well-formed request is still the client's to fix: 400, told apart by "error".
    case ErrorCode::bad_request:
    case ErrorCode::policy_violation:
      return bhttp::status::bad_request;
    case ErrorCode::not_found:
      return bhttp::status::not_found;
    case ErrorCode::conflict:
      return bhttp::status::conflict;
    case ErrorCode::payload_too_large:
      return bhttp::status::payload_too_large;
    case ErrorCode::unsupported_media:
      return bhttp::status::unsupported_media_type;
    case ErrorCode::unauthorized:
      return bhttp::status::unauthorized;
    case ErrorCode::forbidden:
      return bhttp::status::forbidden;
    case ErrorCode::unavailable:
      return bhttp::status::service_unavailable;
    case ErrorCode::config:
    case ErrorCode::io:
    case ErrorCode::crypto:
    case ErrorCode::directory:
    case ErrorCode::internal:
      break;
  }
  return bhttp::status::internal_server_error;
}

std::string public_message(const Error& error) {
  if (status_for(error.code) != bhttp::status::internal_server_error) return error.message;
  log::error("http", "{}: {}", error_code_name(error.code), error.message);
  return "internal server error";
}

Response error_response(const Error& error, unsigned version, bool keep_alive) {
  const auto status = status_for(error.code);
  // Messages may quote what the caller sent: never at length.
  const std::string cut = caller_text(error.message, kMaxErrorMessageBytes);
  std::string_view message = cut;
  if (status == bhttp::status::internal_server_error) {
    log::error("http", "{}: {}", error_code_name(error.code), error.message);
    message = "internal server error";
  }
  auto res = json_response(
      status, api::encode_message(api::ErrorAnswer{std::string(error_code_name(error.code)), std::string(message)}),
      version, keep_alive);
  // The directory is expected back soon; tell well-behaved clients when to retry.
  if (status == bhttp::status::service_unavailable) res.set(bhttp::field::retry_after, "5");
  return res;
}

namespace {

bool is_json_media_type(std::string_view content_type) {
  auto type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  return beast::iequals(type, "application/json");
}

}  // namespace

Result<boost::json::object> parse_json_object(const Request& request) {
  const auto content_type = request[bhttp::field::content_type];
  if (!is_json_media_type(content_type)) {
    return fail(Error::unsupported_media(
        fmt::format("expected Content-Type application/json, got '{}'", std::string_view(content_type))));
  }
  return parse_json_object_text(request.body());
}

Result<std::string> required_string(const boost::json::object& body, std::string_view name) {
  auto* v = body.if_contains(name);
  if (!v) return fail(Error::bad_request(fmt::format("field '{}' is required", name)));
  if (!v->is_string()) return fail(Error::bad_request(fmt::format("field '{}' must be a string", name)));
  return std::string(v->as_string());
}

}  // namespace ca::http
