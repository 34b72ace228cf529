#include "master_client.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <cstddef>

#include "api/error_answer.hpp"

namespace ca::clone_tools {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace json = boost::json;
using tcp = net::ip::tcp;

Result<HttpsUrl> parse_https_url(const std::string& url) {
  constexpr std::string_view scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return fail(Error::config(fmt::format("'{}' is not an https:// URL", url)));
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  HttpsUrl u;
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    u.host = rest;
    u.port = "443";
  } else {
    u.host = rest.substr(0, colon);
    u.port = rest.substr(colon + 1);
  }
  if (u.host.empty() || u.port.empty()) return fail(Error::config(fmt::format("'{}' has no host or port", url)));
  return u;
}

struct MasterClient::Impl {
  HttpsUrl url;
  std::string base;
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};

  // `status_out`: when given, any status with a JSON body is an answer (its status stored there).
  Result<json::value> exchange(bhttp::verb verb, const std::string& target, const std::string* body,
                               int* status_out = nullptr) {
    try {
      beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
      tcp::resolver resolver(io);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
      beast::get_lowest_layer(stream).connect(resolver.resolve(url.host, url.port));
      // Like any TLS client: the master's certificate must name the host of master_url (DNS or IP
      // SAN). A certificate of the same CA for another name must not pass for the master.
      std::string host = url.host;
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      unsigned char ip[16];
      if (inet_pton(AF_INET, host.c_str(), ip) == 1 || inet_pton(AF_INET6, host.c_str(), ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream.native_handle()), host.c_str()) != 1)
          return fail(Error::config(fmt::format("'{}' is not an IP address OpenSSL can check", host)));
      } else {
        SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
        if (SSL_set1_host(stream.native_handle(), host.c_str()) != 1)
          return fail(Error::config(fmt::format("cannot check the host name '{}'", host)));
      }
      stream.handshake(ssl::stream_base::client);
      bhttp::request<bhttp::string_body> req{verb, target, 11};
      req.set(bhttp::field::host, url.host);
      req.set(bhttp::field::accept, "application/json");
      if (body) {
        req.set(bhttp::field::content_type, "application/json");
        req.body() = *body;
      }
      req.prepare_payload();
      bhttp::write(stream, req);
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(16UL * 1024 * 1024);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(120));
      bhttp::read(stream, buffer, parser);
      auto res = parser.release();
      beast::error_code ignored;
      stream.shutdown(ignored);
      int status = static_cast<int>(res.result_int());
      json::value parsed;
      boost::system::error_code jec;
      if (!res.body().empty()) parsed = json::parse(res.body(), jec);
      if (status_out && !jec && !res.body().empty()) {
        *status_out = status;
        return parsed;
      }
      if (status >= 200 && status < 300) {
        if (jec) return fail(Error::directory(fmt::format("{}{}: the answer is not JSON", base, target)));
        return parsed;
      }
      std::string message = res.body();
      if (!jec)
        if (auto answer = api::decode_message<api::ErrorAnswer>(parsed)) message = answer->message;
      std::string text =
          fmt::format("{} {}{}: HTTP {}: {}", std::string(bhttp::to_string(verb)), base, target, status, message);
      switch (status) {
        case 400:
          return fail(Error::bad_request(text));
        case 401:
          return fail(Error::unauthorized(text));
        case 403:
          return fail(Error::forbidden(text));
        case 404:
          return fail(Error::not_found(text));
        case 409:
          return fail(Error::conflict(text));
        default:
          return fail(status >= 500 ? Error::unavailable(text) : Error::internal(text));
      }
    } catch (const boost::system::system_error& e) {
      // A TLS failure is a question of trust (another CA, a refused client certificate), not of
      // reachability: callers tell them apart by the error code.
      if (e.code().category() == net::error::get_ssl_category())
        return fail(Error::forbidden(fmt::format("{}: TLS failed ({}); is this the right CA?", base, e.what())));
      return fail(Error::unavailable(fmt::format("{} is unreachable: {}", base, e.code().message())));
    } catch (const std::exception& e) {
      return fail(Error::unavailable(fmt::format("{} is unreachable: {}", base, e.what())));
    }
  }
};

MasterClient::MasterClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MasterClient::~MasterClient() = default;

Result<std::unique_ptr<MasterClient>> MasterClient::create(const std::string& base_url, X509* trusted_ca,
                                                           X509* client_cert, EVP_PKEY* client_key) {
  auto impl = std::make_unique<Impl>();
  CA_TRY(impl->url, parse_https_url(base_url));
  impl->base = base_url;
  while (!impl->base.empty() && impl->base.back() == '/') impl->base.pop_back();
  SSL_CTX* native = impl->ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(native), trusted_ca) != 1)
    return fail(Error::crypto("cannot trust the bundle's CA certificate"));
  impl->ctx.set_verify_mode(ssl::verify_peer);
  if (client_cert && client_key) {
    if (SSL_CTX_use_certificate(native, client_cert) != 1 || SSL_CTX_use_PrivateKey(native, client_key) != 1)
      return fail(Error::crypto("cannot use the subsystem certificate as TLS client certificate"));
  }
  return std::unique_ptr<MasterClient>(new MasterClient(std::move(impl)));
}

Result<json::value> MasterClient::get(const std::string& target) {
  return impl_->exchange(bhttp::verb::get, target, nullptr);
}

Result<std::pair<int, json::value>> MasterClient::get_with_status(const std::string& target) {
  int status = 0;
  CA_TRY(auto body, impl_->exchange(bhttp::verb::get, target, nullptr, &status));
  return std::pair<int, json::value>(status, std::move(body));
}

Result<json::value> MasterClient::post(const std::string& target, const json::value& body) {
  std::string text = json::serialize(body);
  return impl_->exchange(bhttp::verb::post, target, &text);
}

std::string MasterClient::answer_error(const std::string& target, const std::string& why) const {
  return fmt::format("{}{}: the answer: {}", impl_->base, target, why);
}

Result<json::value> MasterClient::remove(const std::string& target) {
  return impl_->exchange(bhttp::verb::delete_, target, nullptr);
}

}  // namespace ca::clone_tools
