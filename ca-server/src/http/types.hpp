#pragma once
// The vocabulary shared by the transport (server), the router and the endpoint handlers.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace ca::http {

namespace beast = boost::beast;

using Request = beast::http::request<beast::http::string_body>;
using Response = beast::http::response<beast::http::string_body>;

struct RequestContext {
  // Shared so that a handler answering later, from another thread, can still read it.
  std::shared_ptr<const Request> request;
  std::map<std::string, std::string> path_params;  // {name} segments of the route, percent-decoded
  std::map<std::string, std::string> query;        // percent-decoded; the first of repeated keys wins
  std::string path;                                 // the target's path as sent (not decoded, no query)
  bool tls = false;
  std::string peer_certificate_pem;  // the verified TLS client certificate, empty if none
  std::string remote_address;        // the peer's IP address
  std::chrono::system_clock::time_point received_at = std::chrono::system_clock::now();  // when it was read whole
};

// Called exactly once, from any thread; the session carries the response back to its own strand.
// A second call is ignored; a Responder dropped without being called answers 500.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(RequestContext, Responder)>;

}  // namespace ca::http
