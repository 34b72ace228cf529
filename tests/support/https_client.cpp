#include "support/https_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace ca::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

struct HttpsClient::Impl {
  std::string host;
  unsigned short port;
  net::io_context io;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  int opened = 0;

  void connect() {
    stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, ctx);
    tcp::resolver resolver(io);
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(*stream).connect(resolver.resolve(host, std::to_string(port)));
    stream->handshake(ssl::stream_base::client);
    buffer.clear();
    ++opened;
  }

  HttpReply exchange(http::request<http::string_body>& req) {
    HttpReply reply;
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        if (!stream) connect();
        beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(60));
        http::write(*stream, req);
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        http::read(*stream, buffer, parser);
        auto res = parser.release();
        reply.status = static_cast<int>(res.result_int());
        reply.body = res.body();
        for (const auto& f : res) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          reply.headers[name] = std::string(f.value());
        }
        if (!res.keep_alive()) stream.reset();
        return reply;
      } catch (const std::exception& e) {
        stream.reset();  // the server closed an idle keep-alive connection: reconnect once
        reply.status = 0;
        reply.body = e.what();
      }
    }
    return reply;
  }
};

HttpsClient::HttpsClient(std::string host, unsigned short port, std::filesystem::path ca_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->ctx.load_verify_file(ca_file.string());
  impl_->ctx.set_verify_mode(ssl::verify_peer);
}

HttpsClient::~HttpsClient() = default;

HttpReply HttpsClient::get(const std::string& target) {
  http::request<http::string_body> req{http::verb::get, target, 11};
  req.set(http::field::host, impl_->host);
  req.keep_alive(true);
  return impl_->exchange(req);
}

HttpReply HttpsClient::post(const std::string& target, const std::string& body, const std::string& content_type) {
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, impl_->host);
  req.set(http::field::content_type, content_type);
  req.body() = body;
  req.prepare_payload();
  req.keep_alive(true);
  return impl_->exchange(req);
}

int HttpsClient::connections_opened() const { return impl_->opened; }

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

std::string json_field(const std::string& json, const std::string& name) {
  std::string key = "\"" + name + "\"";
  auto pos = json.find(key);
  if (pos == std::string::npos) return {};
  pos = json.find(':', pos + key.size());
  if (pos == std::string::npos) return {};
  ++pos;
  while (pos < json.size() && json[pos] == ' ') ++pos;
  if (pos >= json.size()) return {};
  if (json[pos] != '"') {
    auto end = json.find_first_of(",}", pos);
    return json.substr(pos, end - pos);
  }
  std::string out;
  for (++pos; pos < json.size() && json[pos] != '"'; ++pos) {
    if (json[pos] == '\\' && pos + 1 < json.size()) {
      char n = json[++pos];
      out += n == 'n' ? '\n' : n == 'r' ? '\r' : n == 't' ? '\t' : n;
    } else {
      out += json[pos];
    }
  }
  return out;
}

}  // namespace ca::testing
