#include "http/router.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <boost/beast/http/field.hpp>

#include "http/responses.hpp"
#include "http/url.hpp"

namespace ca::http {

namespace bhttp = beast::http;

namespace {

// "/a/b/" -> {"a", "b", ""}: a trailing slash is a segment of its own, so it never matches "/a/b".
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.starts_with('/')) path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

}  // namespace

void Router::add(bhttp::verb method, std::string pattern, Handler handler, Exposure exposure, Runs runs) {
  if (!pattern.starts_with('/')) throw std::invalid_argument("route pattern must start with '/': " + pattern);
  if (!handler) throw std::invalid_argument("route without a handler: " + pattern);
  Route route{method, {}, std::move(handler), exposure, pattern, runs};
  std::set<std::string_view> names;
  for (auto text : split_path(pattern)) {
    const bool param = text.starts_with('{') && text.ends_with('}') && text.size() > 2;
    if (param) text = text.substr(1, text.size() - 2);
    if (text.find_first_of("{}") != std::string_view::npos || (param && !names.insert(text).second)) {
      throw std::invalid_argument("malformed route pattern: " + pattern);
    }
    route.segments.push_back({std::string(text), param});
  }
  const auto same_shape = [&route](const Route& other) {
    return std::ranges::equal(route.segments, other.segments, [](const Segment& a, const Segment& b) {
      return a.param == b.param && (a.param || a.text == b.text);
    });
  };
  for (const auto& other : routes_) {
    if (other.method == method && same_shape(other)) {
      throw std::invalid_argument(
          fmt::format("route {} {} registered twice", std::string_view(bhttp::to_string(method)), pattern));
    }
  }
  routes_.push_back(std::move(route));
}

bool Router::matches(const Route& route, const std::vector<std::string_view>& segments) {
  if (route.segments.size() != segments.size()) return false;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const auto& s = route.segments[i];
    // Parameters need a value; exact segments compare before decoding, which is RFC 3986
    // equivalent for the unreserved characters route patterns use.
    if (s.param ? segments[i].empty() : s.text != segments[i]) return false;
  }
  return true;
}

bool Router::more_specific(const Route& a, const Route& b) {
  for (std::size_t i = 0; i < a.segments.size() && i < b.segments.size(); ++i) {
    if (a.segments[i].param != b.segments[i].param) return !a.segments[i].param;
  }
  return false;
}

bool Router::runs_on_io_thread(bhttp::verb method, std::string_view path, bool tls) const {
  const auto segments = split_path(path);
  for (const auto& route : routes_) {
    if (route.runs != Runs::on_io_thread || route.method != method) continue;
    if (!tls && route.exposure != Exposure::also_plain_http) continue;
    if (route.segments.size() != segments.size()) continue;
    bool literal_match = true;
    for (std::size_t i = 0; i < segments.size() && literal_match; ++i)
      literal_match = !route.segments[i].param && route.segments[i].text == segments[i];
    if (literal_match) return true;
  }
  return false;
}

void Router::dispatch(RequestContext ctx, Responder respond) const {
  const auto segments = split_path(ctx.path);
  const auto method = ctx.request->method();
  const Route* best = nullptr;
  std::set<bhttp::verb> allowed;
  for (const auto& route : routes_) {
    if (!ctx.tls && route.exposure != Exposure::also_plain_http) continue;
    if (!matches(route, segments)) continue;
    if (route.method != method) {
      allowed.insert(route.method);
    } else if (!best || more_specific(route, *best)) {
      best = &route;
    }
  }
  const unsigned version = ctx.request->version();
  const bool keep_alive = ctx.request->keep_alive();
  if (!best && allowed.empty()) {
    return respond(error_response(Error::not_found(fmt::format("no resource at {}", ctx.path)), version, keep_alive));
  }
  if (!best) {
    std::string allow;
    for (auto verb : allowed) allow += std::string(allow.empty() ? "" : ", ") + std::string(bhttp::to_string(verb));
    auto res = json_response(bhttp::status::method_not_allowed,
                             {{"error", "method_not_allowed"},
                              {"message", fmt::format("{} is not allowed on {}; allowed: {}",
                                                      std::string_view(bhttp::to_string(method)), ctx.path, allow)}},
                             version, keep_alive);
    res.set(bhttp::field::allow, allow);
    return respond(std::move(res));
  }
  ctx.annotations->set_route(best->pattern);
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!best->segments[i].param) continue;
    auto value = percent_decode(segments[i], false);
    if (!value) return respond(error_response(value.error(), version, keep_alive));
    ctx.path_params[best->segments[i].text] = std::move(*value);
  }
  best->handler(std::move(ctx), std::move(respond));
}

}  // namespace ca::http
