#pragma once
// Rendering of responses and typed errors: the one place where an ErrorCode becomes an HTTP status.
#include <string>
#include <string_view>

#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>

#include "core/error.hpp"
#include "http/types.hpp"

namespace ca::http {

// The server fixes version, keep-alive, Server and Content-Length on every response it sends;
// the parameters matter only to callers that use a response elsewhere.
Response json_response(beast::http::status status, const boost::json::value& body, unsigned version = 11,
                       bool keep_alive = true);
// DER or PEM bodies (application/pkix-cert, application/pkix-crl, application/x-pem-file ...).
Response bytes_response(beast::http::status status, std::string body, std::string_view content_type,
                        unsigned version = 11, bool keep_alive = true);

beast::http::status status_for(ErrorCode code);
// {"error": error_code_name(code), "message": ...}. 503 carries Retry-After: 5. Server-side failures
// (500) are logged in full and answered with a generic message: directory or OpenSSL details stay here.
Response error_response(const Error& error, unsigned version = 11, bool keep_alive = true);
// The message a client may see: the error's own, or for a server-side failure (500) a generic one
// (the details are logged here). For protocols with their own error forms (Dogtag XML, EST text).
std::string public_message(const Error& error);

// The body of a request as a JSON object: 415 unless Content-Type is application/json (parameters
// such as charset allowed), 400 for malformed JSON (parser message and byte offset; a key twice in
// one object is malformed: core/json_text.hpp) or a non-object.
Result<boost::json::object> parse_json_object(const Request& request);
// A string field of a request body: 400 naming the field when it is missing or not a string.
Result<std::string> required_string(const boost::json::object& body, std::string_view name);

}  // namespace ca::http
