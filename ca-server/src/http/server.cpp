#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/log.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/pem.hpp"
#include "http/access_log.hpp"
#include "http/client_limits.hpp"
#include "http/proxy_protocol.hpp"
#include "http/responses.hpp"
#include "http/url.hpp"

namespace ca::http {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using beast::error_code;

namespace {

constexpr std::string_view kLog = "http";
// Bounds the end of a connection: reading the unread rest of a rejected request (so that closing
// does not reset the connection under our answer) and waiting for the peer's TLS close_notify.
constexpr auto kCloseTimeout = std::chrono::seconds(2);
constexpr std::size_t kDrainLimit = 1 << 20;
// How long a connection without a whole request when stop() begins gets to send one, which is
// answered 503: a kept-alive client may have sent its next request as the stop began (it is on
// the wire), a connection accepted in the same instant sends its first after the TLS handshake.
// A connection silent for that long is closed; its client sent nothing and may retry elsewhere.
constexpr auto kKeptAliveRequestAfterStop = std::chrono::milliseconds(250);
constexpr auto kFirstRequestAfterStop = std::chrono::seconds(1);

// A close_notify the peer sent as an alert in the middle of a read (strongSwan does): an ordinary end.
bool is_close_notify_alert(error_code ec) {
  return ec.category() == net::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_AD_REASON_OFFSET + SSL_AD_CLOSE_NOTIFY;
}

// The ordinary ends of a connection (peer gone, idle timeout, shutdown) are not worth a warning.
void fail(error_code ec, std::string_view what) {
  if (ec == net::error::operation_aborted || ec == beast::error::timeout || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == ssl::error::stream_truncated || ec == bhttp::error::end_of_stream ||
      ec == bhttp::error::partial_message || is_close_notify_alert(ec)) {
    log::debug(kLog, "{}: {}", what, ec.message());
    return;
  }
  log::warn(kLog, "{}: {} ({}:{})", what, ec.message(), ec.category().name(), ec.value());
}

bool is_parse_error(error_code ec) { return ec.category() == make_error_code(bhttp::error::bad_target).category(); }

// The client certificate, if one was presented and verified.
crypto::PeerCertificate verified_peer_certificate(SSL* ssl) {
  ossl::UniquePtr<X509> cert(SSL_get1_peer_certificate(ssl));
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  return crypto::PeerCertificate::of(cert.get());
}

Status configure_tls(ssl::context& ctx, const ServerOptions& options) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  const auto config_error = [](std::string_view what, const std::filesystem::path& file, std::string why) {
    return fail(Error::config(fmt::format("TLS {} {}: {}", what, file.string(), why)));
  };
  error_code ec;
  (void)ctx.use_certificate_chain_file(options.cert_chain_file.string(), ec);
  if (ec) return config_error("certificate chain", options.cert_chain_file, ec.message());
  (void)ctx.use_private_key_file(options.key_file.string(), ssl::context::pem, ec);
  // OpenSSL also checks here that the key matches the certificate.
  if (ec) return config_error("private key", options.key_file, ec.message());
  if (options.client_ca_file.empty()) return ok();

  (void)ctx.load_verify_file(options.client_ca_file.string(), ec);
  if (ec) return config_error("client CA file", options.client_ca_file, ec.message());
  // The CertificateRequest names these CAs so that clients pick a matching certificate.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.string().c_str());
  if (!names) return config_error("client CA file", options.client_ca_file, ossl::drain_errors());
  SSL_CTX_set_client_CA_list(native, names);
  // verify_peer without fail_if_no_peer_cert: a certificate is asked for, not required.
  ctx.set_verify_mode(ssl::verify_peer);
  // Any purpose: a device re-enrolling over EST presents its server certificate (serverAuth only).
  // What a presented certificate may do is decided per request from the directory (the agents
  // group, the instance registry, renewal of exactly its own names), never from its EKU.
  X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(native), X509_PURPOSE_ANY);
  // Without a session id context OpenSSL refuses to resume sessions once peers are verified.
  static constexpr unsigned char kSessionContext[] = "ca-server";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  return ok();
}

// Enforces "a Responder is called exactly once": a second answer is dropped, and a Responder
// dropped unanswered (a handler bug) still answers, so the connection is not left hanging.
class ResponseSlot {
 public:
  explicit ResponseSlot(std::function<void(Response)> deliver) : deliver_(std::move(deliver)) {}
  ResponseSlot(const ResponseSlot&) = delete;
  ResponseSlot& operator=(const ResponseSlot&) = delete;
  ~ResponseSlot() {
    if (!answered_.exchange(true)) deliver_(error_response(Error::internal("a handler dropped its Responder")));
  }

  void answer(Response res) {
    if (answered_.exchange(true)) {
      if (expired_.load())
        log::info(kLog, "a request answered after its deadline (it was already told 503); the late answer is dropped");
      else
        log::warn(kLog, "a handler answered a request twice; the second answer is dropped");
      return;
    }
    deliver_(std::move(res));
  }

  // What the handler wants said if its deadline passes (RequestContext::answer_if_late).
  void set_late_answer(Response res) {
    std::lock_guard lock(late_mutex_);
    late_answer_ = std::move(res);
  }

  enum class Expiry { already_answered, own_late_answer, fallback };
  // The request's deadline passed: answer the handler's late answer if it gave one, else
  // `fallback`, unless the handler already answered.
  Expiry expire(Response fallback) {
    if (answered_.load()) return Expiry::already_answered;
    std::optional<Response> own;
    {
      std::lock_guard lock(late_mutex_);
      own.swap(late_answer_);
    }
    expired_ = true;
    const auto used = own ? Expiry::own_late_answer : Expiry::fallback;
    answer(own ? std::move(*own) : std::move(fallback));
    return used;
  }

 private:
  std::mutex late_mutex_;
  std::optional<Response> late_answer_;
  std::function<void(Response)> deliver_;
  std::atomic<bool> answered_{false};
  std::atomic<bool> expired_{false};
};

class ListenSocket;

// Who is at the other end: the TCP peer, or the client a trusted PROXY header named.
struct ClientEndpoint {
  std::string address;  // IP text
  uint16_t port = 0;
  std::string text() const {
    return address.find(':') != std::string::npos ? fmt::format("[{}]:{}", address, port)
                                                  : fmt::format("{}:{}", address, port);
  }
};

// A transport-level error answer, in the JSON shape of every other error.
Response transport_error(bhttp::status status, std::string_view error, std::string_view message) {
  return json_response(status, {{"error", error}, {"message", message}}, 11, false);
}

// The framing of a request body must be unambiguous: Content-Length, or Transfer-Encoding that is
// exactly "chunked". A coding this server does not implement (gzip, "chunked, identity"), or both
// headers at once, is how a front end and this server come to disagree about where a request ends
// (request smuggling): such a request is refused and its connection closed. Empty: acceptable.
std::optional<Response> refuse_ambiguous_framing(const Request& header) {
  const auto codings = header.count(bhttp::field::transfer_encoding);
  if (codings == 0) return std::nullopt;
  if (header.count(bhttp::field::content_length) > 0)
    return transport_error(bhttp::status::bad_request, "bad_request",
                           "a request may not carry both Content-Length and Transfer-Encoding");
  std::string_view value = header[bhttp::field::transfer_encoding];
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (codings == 1 && beast::iequals(value, "chunked")) return std::nullopt;
  return transport_error(bhttp::status::not_implemented, "not_implemented",
                         "Transfer-Encoding other than a single 'chunked' is not supported");
}

// What stop() tells every open connection (Session below).
class StoppableConnection {
 public:
  virtual ~StoppableConnection() = default;
  // Thread-safe: the connection acts on it on its own strand.
  virtual void server_stopping() = 0;
};

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions o, std::shared_ptr<Router> r)
      : options(std::move(o)),
        router(std::move(r)),
        ioc(options.io_threads),
        work(ioc.get_executor()),
        grace_timer(ioc),
        workers(static_cast<std::size_t>(options.worker_threads)) {}

  void request_started() { ++in_flight; }
  void request_finished() {
    if (--in_flight == 0 && stopping) finish();
  }
  void begin_shutdown();
  // Every open connection, for stop(). True when the server is already stopping: the connection
  // was registered after stop() listed them and must act on the stop itself.
  bool add_connection(const std::shared_ptr<StoppableConnection>& connection) {
    std::lock_guard lock(connections_mutex);
    open_connections[connection.get()] = connection;
    return stopping.load();
  }
  void remove_connection(const StoppableConnection* connection) {
    std::lock_guard lock(connections_mutex);
    open_connections.erase(connection);
  }
  // Abandons whatever is left (connections still closing, requests past the grace): run() returns.
  void finish() {
    if (!finished.exchange(true)) ioc.stop();
  }
  void run_io();

  // Declaration order is destruction order in reverse: the workers are joined before the
  // io_context destroys the sessions, and sessions use everything declared before it.
  ServerOptions options;
  std::shared_ptr<Router> router;
  std::optional<ssl::context> tls;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  std::atomic<int> in_flight{0};
  std::atomic<int> connections{0};      // sessions alive
  std::atomic<int> queued_requests{0};  // posted to the workers, not started yet
  std::atomic<int64_t> last_limit_log{0};
  ConnectionsPerClient per_client{options.max_connections_per_client};
  RequestRateLimiter rate_limiter{
      {.per_second = options.client_requests_per_second, .burst = options.client_request_burst}};
  struct {
    std::atomic<uint64_t> over_max_connections{0}, over_client_connections{0}, bad_proxy_header{0}, rate_limited{0},
        bad_framing{0};
  } refused;
  std::mutex connections_mutex;
  std::unordered_map<const StoppableConnection*, std::weak_ptr<StoppableConnection>> open_connections;
  // At most one warning a second about a limit, however hard it is hit.
  bool should_log_limit() {
    auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    auto last = last_limit_log.load();
    return now != last && last_limit_log.compare_exchange_strong(last, now);
  }
  std::mutex run_mutex;
  std::condition_variable run_cv;
  bool running = false;
  net::io_context ioc;
  // Requests out on the workers have no I/O pending: this keeps run() from returning under them.
  net::executor_work_guard<net::io_context::executor_type> work;
  net::steady_timer grace_timer;
  net::thread_pool workers;
  std::vector<std::shared_ptr<ListenSocket>> listeners;
};

namespace {

// The read / dispatch / write loop shared by plain and TLS connections (CRTP, as in Beast's
// server-flex): Derived supplies stream(), run() and do_close().
template <class Derived>
class Session : public StoppableConnection {
 public:
  // Requests already read are answered (Connection: close); a connection waiting for a request
  // gets a moment to send it (kKeptAliveRequestAfterStop, kFirstRequestAfterStop), then a 503,
  // or is closed if it stays silent.
  void server_stopping() override {
    server_.request_started();  // stop() waits until this connection has decided
    net::post(derived().stream().get_executor(), [self = derived().shared_from_this()] {
      self->apply_stop();
      self->server_.request_finished();
    });
  }

 private:
  friend Derived;  // only PlainSession and TlsSession make one
  Session(HttpServer::Impl& server, const ClientEndpoint& client, ClientConnectionSlot slot,
          std::chrono::steady_clock::time_point accepted, bool tls)
      : server_(server),
        tls_(tls),
        remote_(client.address),
        peer_(client.text()),
        first_request_deadline_(accepted + server.options.handshake_timeout),
        client_slot_(std::move(slot)) {
    ++server_.connections;
  }

 protected:
  ~Session() {
    server_.remove_connection(this);
    release_stop_hold();
    --server_.connections;
  }

  // From run(), once the session is owned by a shared_ptr.
  void register_connection() {
    if (server_.add_connection(derived().shared_from_this())) server_stopping();
  }

  // On the strand. Only a connection waiting for a request has anything to decide: one that is
  // answering closes after its answer (send() sees stopping).
  void apply_stop() {
    if (stop_applied_ || !awaiting_request_) return;
    stop_applied_ = true;
    stop_hold_ = true;  // stop() waits for the request under way, or for the wait below to end
    server_.request_started();
    stop_wait_.emplace(derived().stream().get_executor());
    stop_wait_->expires_after(requests_served_ > 0 ? std::chrono::milliseconds(kKeptAliveRequestAfterStop)
                                                   : std::chrono::milliseconds(kFirstRequestAfterStop));
    stop_wait_->async_wait([self = derived().shared_from_this()](error_code ec) {
      if (ec || !self->awaiting_request_) return;
      self->closing_after_stop_ = true;
      error_code ignored;
      self->lowest().socket().cancel(ignored);  // the read ends with operation_aborted, then do_close()
    });
  }

  void release_stop_hold() {
    if (!stop_hold_) return;
    stop_hold_ = false;
    server_.request_finished();
  }

  Derived& derived() { return static_cast<Derived&>(*this); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(derived().stream()); }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(server_.options.body_limit);
    // A new connection has until first_request_deadline_ for its first request (handshake included).
    if (requests_served_ == 0)
      lowest().expires_at(first_request_deadline_);
    else
      lowest().expires_after(server_.options.idle_timeout);
    awaiting_request_ = true;
    bhttp::async_read_header(derived().stream(), buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_read_header, derived().shared_from_this()));
    if (server_.stopping) apply_stop();
  }

  void on_read_header(error_code ec, std::size_t) {
    if (!ec) {
      if (auto refusal = refuse_ambiguous_framing(parser_->get())) {
        ++server_.refused.bad_framing;
        return answer_unread(std::move(*refusal));
      }
    }
    // An oversized Content-Length already failed here: no need to wait for the body.
    if (ec || parser_->is_done()) return on_read(ec, 0);
    const auto& header = parser_->get();
    if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
      // The client sends the body only once asked to (or after a delay of its own).
      continue_.emplace(bhttp::status::continue_, header.version());
      return bhttp::async_write(derived().stream(), *continue_,
                                beast::bind_front_handler(&Session::on_continue, derived().shared_from_this()));
    }
    do_read_body();
  }

  void on_continue(error_code ec, std::size_t) {
    if (ec) return fail(ec, "write to " + remote_);
    do_read_body();
  }

  void do_read_body() {
    lowest().expires_after(server_.options.idle_timeout);
    bhttp::async_read(derived().stream(), buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_read, derived().shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    awaiting_request_ = false;  // read, or the connection is ending: nothing to wait for at stop
    if (stop_wait_) stop_wait_->cancel();
    if (ec && closing_after_stop_) {
      release_stop_hold();
      return derived().do_close();
    }
    if (ec == bhttp::error::end_of_stream) {
      release_stop_hold();
      return derived().do_close();
    }
    const auto& header = parser_->get();
    const auto query_start = header.target().find('?');
    std::string path(header.target().substr(0, query_start));
    method_ = std::string(header.method_string());
    path_ = path;
    request_id_ = choose_request_id(header["X-Request-Id"]);
    annotations_ = std::make_shared<RequestAnnotations>();
    if (ec == bhttp::error::body_limit) {
      return answer_unread(Error::too_large(fmt::format("request body exceeds {} bytes", server_.options.body_limit)));
    }
    if (ec && is_parse_error(ec) && ec != bhttp::error::partial_message) {
      return answer_unread(Error::bad_request(fmt::format("malformed HTTP request: {}", ec.message())));
    }
    if (ec) {
      release_stop_hold();
      return fail(ec, "read from " + remote_);
    }
    if (server_.stopping) {
      // Read after stop() began: answered, not started (a balancer retries it elsewhere).
      start_request(header.version(), false);
      return send(error_response(Error::unavailable("the server is shutting down; retry (another instance may answer)"),
                                 header.version(), false));
    }

    auto request = std::make_shared<const Request>(parser_->release());
    start_request(request->version(), request->keep_alive());
    route(request, std::move(path), query_start);
  }

  // A request read whole: to the router, on this thread (health checks) or a worker's, unless a
  // limit answers it first.
  void route(const std::shared_ptr<const Request>& request, std::string path, std::size_t query_start) {
    RequestContext ctx{.request = request,
                       .path = std::move(path),
                       .tls = tls_,
                       .peer_certificate = peer_certificate_,
                       .remote_address = remote_,
                       .request_id = request_id_,
                       .annotations = annotations_};
    if (!ctx.path.starts_with('/'))
      return send(error_response(Error::bad_request("the request target must be a path")));
    if (query_start != std::string_view::npos) {
      auto query = parse_query(request->target().substr(query_start + 1));
      if (!query) return send(error_response(query.error()));
      ctx.query = std::move(*query);
    }
    if (server_.router->runs_on_io_thread(request->method(), ctx.path, ctx.tls)) {
      // Health checks: answered here, never queued behind workers stuck on the directory, and
      // never rate limited (a balancer's checks come from one address).
      auto respond = make_responder(ctx);
      return server_.router->dispatch(std::move(ctx), std::move(respond));
    }
    if (const auto wait = server_.rate_limiter.acquire(remote_, std::chrono::steady_clock::now()); wait.count() > 0) {
      ++server_.refused.rate_limited;
      if (server_.should_log_limit())
        log::warn(kLog, "{} sends requests faster than allowed: answering 429 (server.client_requests_per_second)",
                  remote_);
      auto res = transport_error(bhttp::status::too_many_requests, "too_many_requests",
                                 "too many requests from this address; retry after the time in Retry-After");
      res.keep_alive(request->keep_alive());
      res.set(bhttp::field::retry_after, std::to_string((wait.count() + 999) / 1000));
      return send(std::move(res));
    }
    if (server_.queued_requests.load() >= server_.options.max_queued_requests) {
      if (server_.should_log_limit())
        log::warn(kLog, "{} requests wait for a worker: answering 503 (server.max_queued_requests)",
                  server_.queued_requests.load());
      return send(error_response(Error::unavailable("the server is busy; retry shortly")));
    }
    ++server_.queued_requests;
    auto respond = make_responder(ctx);
    net::post(server_.workers, [&server = server_, router = server_.router, ctx = std::move(ctx),
                                respond = std::move(respond)]() mutable {
      --server.queued_requests;
      try {
        router->dispatch(std::move(ctx), respond);
      } catch (const std::exception& e) {
        respond(error_response(Error::internal(fmt::format("handler threw: {}", e.what()))));
      } catch (...) {
        respond(error_response(Error::internal("handler threw a non-standard exception")));
      }
    });
  }

  // The request could not be read whole (or must not be): answer, then drain what the client still
  // sends, unparsed, and close.
  void answer_unread(const Error& error) { answer_unread(error_response(error)); }
  void answer_unread(Response response) {
    const auto& header = parser_->get();
    method_ = std::string(header.method_string());
    path_ = std::string(header.target().substr(0, header.target().find('?')));
    request_id_ = choose_request_id(header["X-Request-Id"]);
    annotations_ = std::make_shared<RequestAnnotations>();
    awaiting_request_ = false;
    if (stop_wait_) stop_wait_->cancel();
    start_request(header.version(), false);
    drain_before_close_ = true;
    send(std::move(response));
  }

  void start_request(unsigned version, bool keep_alive) {
    version_ = version;
    keep_alive_ = keep_alive;
    started_ = std::chrono::steady_clock::now();
    received_ = std::chrono::system_clock::now();
    if (stop_hold_)
      stop_hold_ = false;  // the hold taken at stop() becomes this request's
    else
      server_.request_started();
  }

  // The Responder for one request, with its deadline (server.request_timeout_ms); also fills in
  // ctx.answer_if_late, which can bring the deadline forward and replace its 503.
  Responder make_responder(RequestContext& ctx) {
    const auto timeout = server_.options.request_timeout;
    auto executor = derived().stream().get_executor();
    auto deadline = std::make_shared<net::steady_timer>(executor);
    auto deliver = [self = derived().shared_from_this(), deadline](Response res) {
      net::post(self->stream().get_executor(), [self, deadline, res = std::move(res)]() mutable {
        deadline->cancel();  // on the session's executor, like the timer's own wait
        self->send(std::move(res));
      });
    };
    auto slot = std::make_shared<ResponseSlot>(std::move(deliver));
    // The wait holds the slot (not the session): a session gone meanwhile makes the answer a no-op post.
    auto on_deadline = [slot, timeout, line = method_ + " " + path_, remote = remote_](error_code ec) {
      if (ec) return;  // answered in time, or the deadline was moved
      // Connection: close, so that the retry opens a new connection, which a balancer in TCP
      // mode may send to another instance (a kept-alive one stays bound to this one).
      const auto expiry = slot->expire(error_response(
          Error::unavailable(fmt::format("the request did not finish within {} ms; retry (another instance may answer)",
                                         timeout.count())),
          11, false));
      if (expiry == ResponseSlot::Expiry::own_late_answer)
        log::info(kLog, "{} {}: not answered in time; sent the handler's own late answer", remote, line);
      else if (expiry == ResponseSlot::Expiry::fallback)
        log::warn(kLog, "{} {}: no answer within {} ms (a slow or frozen directory?); answered 503", remote, line,
                  timeout.count());
    };
    if (timeout.count() > 0) {
      deadline->expires_after(timeout);
      deadline->async_wait(on_deadline);
    }
    ctx.answer_if_late = [slot, deadline, on_deadline, executor, timeout](std::chrono::milliseconds within,
                                                                          Response late_answer) {
      slot->set_late_answer(std::move(late_answer));
      net::post(executor, [deadline, on_deadline, within, timeout] {
        const auto at = std::chrono::steady_clock::now() + within;
        if (timeout.count() > 0 && deadline->expiry() <= at) return;  // the request deadline comes first
        deadline->expires_at(at);  // cancels the earlier wait (its handler sees operation_aborted)
        deadline->async_wait(on_deadline);
      });
    };
    return [slot](Response res) { slot->answer(std::move(res)); };
  }

  // On the strand. The transport, not the handler, decides version, keep-alive and framing.
  void send(Response res) {
    const bool keep_alive = keep_alive_ && res.keep_alive() && !server_.stopping;
    res.version(version_);
    res.keep_alive(keep_alive);
    res.set(bhttp::field::server, "ca-server");
    res.set("X-Request-Id", request_id_);
    const auto status = res.result();
    if (bhttp::to_status_class(status) == bhttp::status_class::informational || status == bhttp::status::no_content ||
        status == bhttp::status::not_modified) {
      res.body().clear();  // these statuses carry no body (prepare_payload would throw)
    }
    res.prepare_payload();
    response_.emplace(std::move(res));
    lowest().expires_after(server_.options.idle_timeout);
    bhttp::async_write(derived().stream(), *response_,
                       beast::bind_front_handler(&Session::on_write, derived().shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    const bool keep_alive = response_->keep_alive();
    const auto latency = std::chrono::steady_clock::now() - started_;
    if (log::enabled(log::Level::debug)) {
      log::debug(kLog, "{} {} {} -> {} in {} us", remote_, method_, path_, response_->result_int(),
                 std::chrono::duration_cast<std::chrono::microseconds>(latency).count());
    }
    report_completed(response_->result_int(), latency);
    response_.reset();
    ++requests_served_;
    server_.request_finished();
    if (ec) return fail(ec, "write to " + remote_);
    if (keep_alive) return do_read();
    if (!drain_before_close_) return derived().do_close();
    lowest().expires_after(kCloseTimeout);
    do_drain();
  }

  // The one place every answered request passes: access log and metrics.
  void report_completed(unsigned status, std::chrono::steady_clock::duration latency) {
    if (server_.options.observers.empty()) return;
    CompletedRequest completed{.received = received_,
                               .latency = latency,
                               .peer = peer_,
                               .tls = tls_,
                               .method = method_,
                               .path = path_,
                               .route = std::string(RequestAnnotations::kUnmatched),
                               .status = status,
                               .request_id = request_id_,
                               .tls_client = tls_client_subject_};
    if (annotations_) {
      completed.route = annotations_->route();
      completed.serial = annotations_->serial();
      completed.agent = annotations_->agent();
    }
    for (const auto& observe : server_.options.observers) {
      try {
        observe(completed);
      } catch (const std::exception& e) {
        log::error(kLog, "a request observer threw: {}", e.what());
      }
    }
  }

  void do_drain() {
    derived().stream().async_read_some(buffer_.prepare(std::size_t{16} * 1024),
                                       beast::bind_front_handler(&Session::on_drain, derived().shared_from_this()));
  }

  void on_drain(error_code ec, std::size_t bytes) {
    drained_ += bytes;
    if (ec || drained_ > kDrainLimit) return derived().do_close();
    do_drain();
  }

  HttpServer::Impl& server_;
  const bool tls_;
  std::string remote_;
  std::string peer_;  // ip:port
  crypto::PeerCertificate peer_certificate_;
  std::string tls_client_subject_;
  // A new connection's first request (TLS handshake and PROXY header included) is due by then.
  const std::chrono::steady_clock::time_point first_request_deadline_;

 private:
  ClientConnectionSlot client_slot_;  // this connection in server.max_connections_per_client
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<Response> response_;  // alive until its write completes
  // The request in flight, for its access log line and metrics.
  std::string method_;
  std::string path_;
  std::string request_id_;
  std::shared_ptr<RequestAnnotations> annotations_;
  std::chrono::system_clock::time_point received_;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool drain_before_close_ = false;
  std::size_t drained_ = 0;
  std::chrono::steady_clock::time_point started_;
  // For stop(): between requests (a new connection too, TLS handshake included), after how many.
  bool awaiting_request_ = true;
  std::size_t requests_served_ = 0;
  bool stop_applied_ = false;
  bool stop_hold_ = false;  // counted in the server's in_flight until the request is read (or not)
  bool closing_after_stop_ = false;
  std::optional<net::steady_timer> stop_wait_;
};

class PlainSession : public Session<PlainSession>, public std::enable_shared_from_this<PlainSession> {
 public:
  PlainSession(HttpServer::Impl& server, tcp::socket&& socket, const ClientEndpoint& client, ClientConnectionSlot slot,
               std::chrono::steady_clock::time_point accepted)
      : Session(server, client, std::move(slot), accepted, false), stream_(std::move(socket)) {}

  beast::tcp_stream& stream() { return stream_; }

  void run() {
    register_connection();
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&PlainSession::do_read, shared_from_this()));
  }

  void do_close() {
    // Send FIN; the socket closes when the last handler lets go of the session.
    error_code ec;
    (void)stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

 private:
  beast::tcp_stream stream_;
};

class TlsSession : public Session<TlsSession>, public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(HttpServer::Impl& server, tcp::socket&& socket, ssl::context& ctx, const ClientEndpoint& client,
             ClientConnectionSlot slot, std::chrono::steady_clock::time_point accepted)
      : Session(server, client, std::move(slot), accepted, true), stream_(std::move(socket), ctx) {}

  beast::ssl_stream<beast::tcp_stream>& stream() { return stream_; }

  void run() {
    register_connection();
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&TlsSession::do_handshake, shared_from_this()));
  }

  void do_close() {
    lowest().expires_after(kCloseTimeout);
    stream_.async_shutdown(beast::bind_front_handler(&TlsSession::on_shutdown, shared_from_this()));
  }

 private:
  void do_handshake() {
    lowest().expires_at(first_request_deadline_);
    stream_.async_handshake(ssl::stream_base::server,
                            beast::bind_front_handler(&TlsSession::on_handshake, shared_from_this()));
  }

  void on_handshake(error_code ec) {
    if (ec) return fail(ec, "TLS handshake with " + remote_);
    peer_certificate_ = verified_peer_certificate(stream_.native_handle());
    tls_client_subject_ = peer_certificate_.subject_text();
    do_read();
  }

  void on_shutdown(error_code ec) {
    if (ec) fail(ec, "TLS shutdown with " + remote_);
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
};

// Counts the connection against its client's cap (server.max_connections_per_client), then hands
// it to a session. Over the cap: closed at once.
void start_session(HttpServer::Impl& server, bool tls, tcp::socket socket, const ClientEndpoint& client,
                   std::chrono::steady_clock::time_point accepted) {
  auto slot = server.per_client.try_open(client.address);
  if (!slot) {
    ++server.refused.over_client_connections;
    if (server.should_log_limit())
      log::warn(kLog, "{} has {} connections open: closing a new one (server.max_connections_per_client)",
                client.address, server.per_client.open(client.address));
    error_code ignored;
    (void)socket.close(ignored);
    return;
  }
  if (tls) {
    std::make_shared<TlsSession>(server, std::move(socket), *server.tls, client, std::move(slot), accepted)->run();
  } else {
    std::make_shared<PlainSession>(server, std::move(socket), client, std::move(slot), accepted)->run();
  }
}

// Reads the PROXY protocol v2 header a trusted balancer sends first (before TLS), then starts the
// session for the client it names. Nothing but the header is read: the TLS bytes stay unread. A
// trusted host may also connect directly (its health checks, its tools): a connection whose first
// byte is not the header's ('\r'; TLS starts with 0x16, HTTP with a method's letter) is a session
// of that host itself. Only the first byte is peeked, so nothing is consumed.
class ProxyHeaderReader : public std::enable_shared_from_this<ProxyHeaderReader> {
 public:
  ProxyHeaderReader(HttpServer::Impl& server, bool tls, tcp::socket&& socket, ClientEndpoint peer)
      : server_(server),
        tls_(tls),
        stream_(std::move(socket)),
        peer_(std::move(peer)),
        accepted_(std::chrono::steady_clock::now()),
        first_byte_deadline_(stream_.get_executor()) {
    ++server_.connections;  // a connection like any other for server.max_connections
  }
  ~ProxyHeaderReader() { --server_.connections; }

  void run() {
    first_byte_deadline_.expires_at(accepted_ + server_.options.handshake_timeout);
    first_byte_deadline_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;  // cancelled: the first byte came
      error_code ignored;
      (void)self->stream_.socket().cancel(ignored);
    });
    stream_.socket().async_wait(tcp::socket::wait_read,
                                beast::bind_front_handler(&ProxyHeaderReader::on_readable, shared_from_this()));
  }

 private:
  void on_readable(error_code ec) {
    first_byte_deadline_.cancel();
    if (ec) return refuse("nothing sent in time: " + ec.message());
    uint8_t first = 0;
    const std::size_t n = stream_.socket().receive(net::buffer(&first, 1), tcp::socket::message_peek, ec);
    if (ec || n == 0) return refuse(ec ? "the connection failed: " + ec.message() : std::string("closed at once"));
    if (first != '\r') return start_session(server_, tls_, stream_.release_socket(), peer_, accepted_);
    stream_.expires_at(accepted_ + server_.options.handshake_timeout);
    net::async_read(stream_, net::buffer(header_.data(), kProxyPreambleSize),
                    beast::bind_front_handler(&ProxyHeaderReader::on_preamble, shared_from_this()));
  }

  void on_preamble(error_code ec, std::size_t) {
    if (ec) return refuse("no PROXY header in time: " + ec.message());
    auto payload = proxy_payload_size({header_.data(), kProxyPreambleSize});
    if (!payload) return refuse(payload.error().message);
    payload_size_ = *payload;
    if (payload_size_ == 0) return on_payload({}, 0);
    net::async_read(stream_, net::buffer(header_.data() + kProxyPreambleSize, *payload),
                    beast::bind_front_handler(&ProxyHeaderReader::on_payload, shared_from_this()));
  }

  void on_payload(error_code ec, std::size_t) {
    if (ec) return refuse("PROXY header cut short: " + ec.message());
    auto header = parse_proxy_header({header_.data(), kProxyPreambleSize + payload_size_});
    if (!header) return refuse(header.error().message);
    ClientEndpoint client = peer_;  // LOCAL (the balancer's own checks): the balancer is the client
    if (header->source_address) client = {*header->source_address, header->source_port};
    stream_.expires_never();
    start_session(server_, tls_, stream_.release_socket(), client, accepted_);
  }

  void refuse(const std::string& why) {
    ++server_.refused.bad_proxy_header;
    log::info(kLog, "closing a connection from {}: {}", peer_.address, why);
    error_code ignored;
    (void)stream_.socket().close(ignored);
  }

  HttpServer::Impl& server_;
  const bool tls_;
  beast::tcp_stream stream_;
  const ClientEndpoint peer_;
  const std::chrono::steady_clock::time_point accepted_;
  net::steady_timer first_byte_deadline_;
  std::array<uint8_t, kProxyPreambleSize + kMaxProxyPayload> header_{};
  std::size_t payload_size_ = 0;
};

class ListenSocket : public std::enable_shared_from_this<ListenSocket> {
 public:
  ListenSocket(HttpServer::Impl& server, const Listener& options)
      : server_(server), options_(options), acceptor_(net::make_strand(server.ioc)), retry_(acceptor_.get_executor()) {}

  static Result<std::shared_ptr<ListenSocket>> open(HttpServer::Impl& server, const Listener& options) {
    const auto config_error = [&](std::string_view step, error_code ec) {
      return fail(Error::config(
          fmt::format("cannot listen on {}:{}: {}: {}", options.address, options.port, step, ec.message())));
    };
    error_code ec;
    const auto address = net::ip::make_address(options.address, ec);
    if (ec) return config_error("not an IP address", ec);
    auto self = std::make_shared<ListenSocket>(server, options);
    for (const auto& network : options.proxy_trusted) {
      auto range = AddressRange::parse(network);
      if (!range)
        return fail(
            range.error().context(fmt::format("proxy_protocol_trusted of {}:{}", options.address, options.port)));
      self->proxy_trusted_.push_back(std::move(*range));
    }
    if (options.proxy_protocol && self->proxy_trusted_.empty())
      return fail(
          Error::config(fmt::format("{}:{}: proxy_protocol needs the balancers' addresses in proxy_protocol_trusted",
                                    options.address, options.port)));
    const tcp::endpoint endpoint{address, options.port};
    auto& acceptor = self->acceptor_;
    if (acceptor.open(endpoint.protocol(), ec); ec) return config_error("open", ec);
    if (acceptor.set_option(net::socket_base::reuse_address(true), ec); ec) return config_error("set_option", ec);
    if (acceptor.bind(endpoint, ec); ec) return config_error("bind", ec);
    if (acceptor.listen(net::socket_base::max_listen_connections, ec); ec) return config_error("listen", ec);
    self->port_ = acceptor.local_endpoint().port();
    return self;
  }

  const Listener& options() const { return options_; }
  uint16_t port() const { return port_; }

  void start() {
    net::dispatch(acceptor_.get_executor(), beast::bind_front_handler(&ListenSocket::do_accept, shared_from_this()));
  }

  // `closed` runs once the acceptor is closed: every connection it accepted is registered by then.
  void close(std::function<void()> closed) {
    net::post(acceptor_.get_executor(), [self = shared_from_this(), closed = std::move(closed)] {
      error_code ignored;
      (void)self->acceptor_.close(ignored);
      self->retry_.cancel();
      closed();
    });
  }

 private:
  void do_accept() {
    // Each connection gets its own strand: its handlers never run concurrently.
    acceptor_.async_accept(net::make_strand(server_.ioc),
                           beast::bind_front_handler(&ListenSocket::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;  // stop() closed us
    if (ec) {
      // Out of descriptors and the like: pause instead of spinning, but keep serving.
      fail(ec, "accept");
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    error_code ignored;
    const auto remote = socket.remote_endpoint(ignored);
    const ClientEndpoint peer{remote.address().to_string(), remote.port()};
    if (server_.connections.load() >= server_.options.max_connections) {
      ++server_.refused.over_max_connections;
      if (server_.should_log_limit())
        log::warn(kLog, "{} connections open: closing a new one from {} (server.max_connections)",
                  server_.connections.load(), peer.address);
      (void)socket.close(ignored);
      return do_accept();
    }
    (void)socket.set_option(tcp::no_delay(true), ignored);
    // A PROXY header counts only from a trusted balancer; anyone else connects as themselves (a
    // header they send is not read as one: TLS or HTTP refuses those bytes).
    if (options_.proxy_protocol && any_contains(proxy_trusted_, peer.address)) {
      std::make_shared<ProxyHeaderReader>(server_, options_.tls, std::move(socket), peer)->run();
    } else {
      start_session(server_, options_.tls, std::move(socket), peer, std::chrono::steady_clock::now());
    }
    do_accept();
  }

  HttpServer::Impl& server_;
  const Listener options_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  uint16_t port_ = 0;
  std::vector<AddressRange> proxy_trusted_;
};

}  // namespace

// run() returns once in_flight is 0: requests being handled, connections still deciding what the
// stop means for them, listeners still closing (a connection accepted meanwhile is told too).
void HttpServer::Impl::begin_shutdown() {
  const int handling = in_flight.load() - 1;  // stop()'s own hold, released at the end
  for (auto& listener : listeners) {
    request_started();
    listener->close([this] { request_finished(); });
  }
  std::vector<std::shared_ptr<StoppableConnection>> open;
  {
    std::lock_guard lock(connections_mutex);
    for (auto& [key, weak] : open_connections)
      if (auto connection = weak.lock()) open.push_back(std::move(connection));
  }
  for (auto& connection : open) connection->server_stopping();
  log::info(kLog, "stopping: {} request(s) in flight, {} connection(s) open, waiting up to {} ms", handling,
            open.size(), options.shutdown_grace.count());
  open.clear();
  grace_timer.expires_after(options.shutdown_grace);
  grace_timer.async_wait([this](error_code) { finish(); });
  request_finished();
}

void HttpServer::Impl::run_io() {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      // One bad connection must not take the server down: log and keep serving.
      log::error(kLog, "unexpected exception on an I/O thread: {}", e.what());
    }
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::create(ServerOptions options, std::shared_ptr<Router> router) {
  if (!router) return fail(Error::config("HTTP server without a router"));
  if (options.listeners.empty()) return fail(Error::config("HTTP server without listeners"));
  if (options.body_limit == 0) return fail(Error::config("HTTP body_limit must be positive"));
  if (options.idle_timeout.count() <= 0) return fail(Error::config("HTTP idle_timeout must be positive"));
  if (options.handshake_timeout.count() <= 0) return fail(Error::config("HTTP handshake_timeout must be positive"));
  if (options.max_connections_per_client <= 0)
    return fail(Error::config("HTTP max_connections_per_client must be positive"));
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options.io_threads <= 0) options.io_threads = cores;
  if (options.worker_threads <= 0) options.worker_threads = 4 * cores;

  auto impl = std::make_unique<Impl>(std::move(options), std::move(router));
  const auto& listeners = impl->options.listeners;
  if (std::ranges::any_of(listeners, &Listener::tls)) {
    impl->tls.emplace(ssl::context::tls_server);
    CA_CHECK(configure_tls(*impl->tls, impl->options));
  }
  for (const auto& listener : listeners) {
    CA_TRY(auto socket, ListenSocket::open(*impl, listener));
    impl->listeners.push_back(std::move(socket));
  }
  for (auto& listener : impl->listeners) listener->start();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop();
  std::unique_lock lock(impl_->run_mutex);
  impl_->run_cv.wait(lock, [this] { return !impl_->running; });
}

int HttpServer::open_connections() const { return impl_->connections.load(); }
int HttpServer::queued_requests() const { return impl_->queued_requests.load(); }

TransportRefusals HttpServer::refusals() const {
  const auto& r = impl_->refused;
  return {.over_max_connections = r.over_max_connections.load(),
          .over_client_connections = r.over_client_connections.load(),
          .bad_proxy_header = r.bad_proxy_header.load(),
          .rate_limited = r.rate_limited.load(),
          .bad_framing = r.bad_framing.load()};
}

uint16_t HttpServer::bound_port(std::size_t listener_index) const {
  return impl_->listeners.at(listener_index)->port();
}

void HttpServer::run() {
  auto& impl = *impl_;
  {
    std::lock_guard lock(impl.run_mutex);
    impl.running = true;
  }
  for (const auto& listener : impl.listeners) {
    log::info(kLog, "listening on {}:{} ({})", listener->options().address, listener->port(),
              listener->options().tls ? "https" : "http");
  }
  {
    std::vector<std::jthread> threads;
    for (int i = 1; i < impl.options.io_threads; ++i) threads.emplace_back([&impl] { impl.run_io(); });
    impl.run_io();
  }
  log::info(kLog, "stopped");
  std::lock_guard lock(impl.run_mutex);
  impl.running = false;
  impl.run_cv.notify_all();
}

void HttpServer::stop() {
  auto& impl = *impl_;
  if (impl.stop_requested.exchange(true)) return;
  // Held until begin_shutdown has told every connection: a request finishing in between must not
  // find in_flight at 0 and end run() under connections that still have a request on its way.
  impl.request_started();
  impl.stopping = true;
  net::post(impl.ioc, [&impl] { impl.begin_shutdown(); });
}

}  // namespace ca::http
