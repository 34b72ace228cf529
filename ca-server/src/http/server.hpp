#pragma once
// The HTTPS transport: listeners accept connections, each connection is a session on its own
// strand (TLS or plain), and every complete request goes to the Router on a worker pool.
// Modelled on Boost.Beast's example/advanced/server-flex; Beast and Asio stay behind this header.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "http/router.hpp"

namespace ca::http {

struct Listener {
  std::string address = "127.0.0.1";  // an IP literal; "0.0.0.0" or "::" for all interfaces
  uint16_t port = 0;                  // 0 = ephemeral, see HttpServer::bound_port
  bool tls = true;
  // PROXY protocol v2 (http/proxy_protocol.hpp): connections from `proxy_trusted` must start with
  // the header, read before TLS, and the client it names is the connection's client (limits,
  // access log, audit); connections from anywhere else are closed at accept.
  bool proxy_protocol = false;
  std::vector<std::string> proxy_trusted;  // networks ("10.0.0.0/8", "::1/128", an address)
};

// What the transport refused before a request reached the router, counted since start.
struct TransportRefusals {
  uint64_t over_max_connections = 0;     // closed at accept: server.max_connections
  uint64_t over_client_connections = 0;  // closed at accept: server.max_connections_per_client
  uint64_t bad_proxy_header = 0;         // missing, malformed, or not sent in time
  uint64_t rate_limited = 0;             // answered 429: server.client_requests_per_second
  uint64_t bad_framing = 0;              // Transfer-Encoding other than chunked, or with Content-Length
};

struct ServerOptions {
  std::vector<Listener> listeners;
  // Required when a listener has tls: PEM chain (leaf first) and its unencrypted PEM key.
  std::filesystem::path cert_chain_file;
  std::filesystem::path key_file;
  // Optional: request (not require) a client certificate, verified against these PEM CA
  // certificates; a verified one shows in RequestContext::peer_certificate. A presented
  // certificate that does not verify fails the handshake.
  std::filesystem::path client_ca_file;
  int io_threads = 0;      // 0 = one per core
  int worker_threads = 0;  // 0 = four per core: handlers may block on the directory
  std::size_t body_limit = std::size_t{64} * 1024;
  std::chrono::seconds idle_timeout{30};           // also bounds the TLS handshake and each write
  std::chrono::milliseconds shutdown_grace{3000};  // how long stop() waits for in-flight requests
  // A request not answered within this gets 503 + Retry-After (the handler's late answer is
  // dropped): no client waits on a frozen directory longer than this. 0 = no deadline.
  std::chrono::milliseconds request_timeout{0};
  // Limits on what clients (anonymous ones included) can make the server hold: connections beyond
  // max_connections are closed at accept; requests beyond max_queued_requests waiting for a
  // worker are answered 503 + Retry-After at once instead of queueing without bound.
  int max_connections = 1024;
  int max_queued_requests = 512;
  // Per client address (the PROXY header's source behind a balancer): connections beyond
  // max_connections_per_client are closed at accept; requests beyond the token bucket
  // (client_requests_per_second sustained, client_request_burst at once; 0 = no limit) are answered
  // 429 + Retry-After. Health checks (routes answered on the I/O thread) are not rate limited.
  int max_connections_per_client = 256;
  double client_requests_per_second = 0;
  double client_request_burst = 0;
  // A new connection must finish its PROXY header, its TLS handshake and its first request's
  // header within this; later requests on a kept-alive connection get idle_timeout.
  std::chrono::seconds handshake_timeout{10};
  // Told about every request once its response is written (access log, metrics), on the
  // connection's I/O thread: they must be quick and thread-safe.
  std::vector<RequestObserver> observers;
};

class HttpServer {
 public:
  // Binds every listener and loads the TLS material; failures are ErrorCode::config naming the
  // address or the file. Connections are accepted once run() is called.
  static Result<std::unique_ptr<HttpServer>> create(ServerOptions options, std::shared_ptr<Router> router);

  // Stops (see stop()) and waits for run() to return.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The port listener `listener_index` is bound to (useful with port 0).
  uint16_t bound_port(std::size_t listener_index) const;
  // What the limits count now: open connections, requests waiting for a worker.
  int open_connections() const;
  int queued_requests() const;
  TransportRefusals refusals() const;

  // Serves on options.io_threads threads (the calling one included) until stop().
  void run();

  // Thread-safe and idempotent: closes the listeners, lets requests in flight finish for up to
  // shutdown_grace, then closes everything; run() then returns. May be called before run().
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ca::http
