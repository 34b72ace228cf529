#pragma once
// The vocabulary shared by the transport (server), the router and the endpoint handlers.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "crypto/peer_certificate.hpp"

namespace ca::http {

namespace beast = boost::beast;

using Request = beast::http::request<beast::http::string_body>;
using Response = beast::http::response<beast::http::string_body>;

// What the router and the handlers learn about a request that the access log and the metrics
// record once its response is written: the route pattern that matched, the certificate the
// response issued or revoked, the agent who called. Thread-safe: a handler may answer from
// another thread.
class RequestAnnotations {
 public:
  static constexpr std::string_view kUnmatched = "unmatched";

  void set_route(std::string pattern) { set(route_, std::move(pattern)); }
  void set_serial(std::string serial_hex) { set(serial_, std::move(serial_hex)); }
  void set_agent(std::string agent) { set(agent_, std::move(agent)); }
  // The route pattern ("/ca/rest/certs/{serial}"), never the raw path; kUnmatched if none.
  std::string route() const { return get(route_); }
  std::string serial() const { return get(serial_); }
  std::string agent() const { return get(agent_); }

 private:
  void set(std::string& field, std::string value) {
    std::lock_guard lock(mutex_);
    field = std::move(value);
  }
  std::string get(const std::string& field) const {
    std::lock_guard lock(mutex_);
    return field;
  }

  mutable std::mutex mutex_;
  std::string route_{kUnmatched};
  std::string serial_;
  std::string agent_;
};

struct RequestContext {
  // Shared so that a handler answering later, from another thread, can still read it.
  std::shared_ptr<const Request> request;
  std::map<std::string, std::string> path_params;  // {name} segments of the route, percent-decoded
  std::map<std::string, std::string> query;        // percent-decoded; the first of repeated keys wins
  std::string path;                                // the target's path as sent (not decoded, no query)
  bool tls = false;
  crypto::PeerCertificate peer_certificate;  // the verified TLS client certificate, empty if none
  std::string remote_address;                // the peer's IP address
  std::string request_id;                    // the client's sane X-Request-Id, or one made for this request
  std::shared_ptr<RequestAnnotations> annotations = std::make_shared<RequestAnnotations>();
  std::chrono::system_clock::time_point received_at = std::chrono::system_clock::now();  // when it was read whole
  // Protocols with an answer of their own for "not now" (OCSP's tryLater) call this before they
  // block: if the handler has not answered `within` (or server.request_timeout_ms, whichever comes
  // first), the client gets `late_answer` instead of the transport's 503. Thread-safe; the
  // handler's own answer after that is dropped. A no-op where no transport serves the request.
  std::function<void(std::chrono::milliseconds within, Response late_answer)> answer_if_late =
      [](std::chrono::milliseconds, const Response&) {};
};

// A request whose response has been written, as the server reports it to its observers.
struct CompletedRequest {
  std::chrono::system_clock::time_point received;  // when the request had been read
  std::chrono::steady_clock::duration latency{};   // from then until the response was written
  std::string peer;                                // "ip:port" ("[::1]:port" for IPv6)
  bool tls = false;
  std::string method;
  std::string path;   // without the query string, as sent
  std::string route;  // the route pattern the router matched, or "unmatched"
  unsigned status = 0;
  std::string request_id;
  std::string serial;      // hex serial of a certificate the response issued or revoked, if any
  std::string agent;       // the agent who called, if the caller authenticated as one
  std::string tls_client;  // subject of the verified TLS client certificate, if any
};
using RequestObserver = std::function<void(const CompletedRequest&)>;

// Called exactly once, from any thread; the session carries the response back to its own strand.
// A second call is ignored; a Responder dropped without being called answers 500.
using Responder = std::function<void(Response)>;
using Handler = std::function<void(RequestContext, Responder)>;

}  // namespace ca::http
