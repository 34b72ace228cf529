#include "core/error.hpp"

namespace ca {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::policy_violation:
      return "policy_violation";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::payload_too_large:
      return "payload_too_large";
    case ErrorCode::unsupported_media:
      return "unsupported_media_type";
    case ErrorCode::unauthorized:
      return "unauthorized";
    case ErrorCode::forbidden:
      return "forbidden";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::config:
      return "config";
    case ErrorCode::io:
      return "io";
    case ErrorCode::crypto:
      return "crypto";
    case ErrorCode::directory:
      return "directory";
    case ErrorCode::internal:
      return "internal";
  }
  return "internal";
}

}  // namespace ca
