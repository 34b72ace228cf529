#pragma once
// Maps (method, path) to a handler. Endpoint files register their routes at start-up; the server
// calls dispatch() on a worker thread for every request.
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

#include "http/types.hpp"

namespace ca::http {

// Where a route answers. Plain HTTP carries only what relying parties fetch (CRLs, the CA
// chain, OCSP): anything else there could be read or altered on the way.
enum class Exposure { https_only, also_plain_http };
// Where a route's handler runs. on_worker (the default): on the worker pool, where it may block on
// the directory. on_io_thread: at once on the connection's I/O thread, never queued behind busy
// workers; only for handlers that never block (health checks must answer while the workers are
// stuck on a frozen directory, or the balancer cannot tell).
enum class Runs { on_worker, on_io_thread };

class Router {
 public:
  // pattern: "/" followed by '/'-separated segments, each exact text or a "{name}" parameter,
  // e.g. "/ca/rest/certs/{serial}". Throws std::invalid_argument for a malformed pattern or a
  // route already registered (same method, same shape): both are start-up programming errors.
  void add(beast::http::verb method, std::string pattern, Handler handler, Exposure exposure = Exposure::https_only,
           Runs runs = Runs::on_worker);
  // Whether the request goes to a route registered with Runs::on_io_thread (literal routes only).
  bool runs_on_io_thread(beast::http::verb method, std::string_view path, bool tls) const;

  // Calls the most specific route matching ctx.path and the method (an exact segment beats a
  // parameter, leftmost first), with ctx.path_params filled in. Otherwise answers itself:
  // 404 JSON for a path no route matches, 405 JSON with Allow for a path matched with other
  // methods, 400 for a malformed percent-encoding in a parameter. On plain HTTP (!ctx.tls) only
  // also_plain_http routes exist; every other path is 404 there. The matched route's pattern is
  // noted in ctx.annotations (metrics and the access log count by pattern, never by raw path).
  void dispatch(RequestContext ctx, Responder respond) const;

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool param = false;
  };
  struct Route {
    beast::http::verb method;
    std::vector<Segment> segments;
    Handler handler;
    Exposure exposure = Exposure::https_only;
    std::string pattern;
    Runs runs = Runs::on_worker;
  };

  static bool more_specific(const Route& a, const Route& b);
  static bool matches(const Route& route, const std::vector<std::string_view>& segments);

  std::vector<Route> routes_;
};

}  // namespace ca::http
