#pragma once
// A small blocking HTTPS client for tests (Boost.Beast): one keep-alive connection per object.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace ca::testing {

struct HttpReply {
  int status = 0;  // 0 = transport failure (see body)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class HttpsClient {
 public:
  // Trusts `ca_file` and checks the server certificate (host name check off: tests use 127.0.0.1).
  HttpsClient(std::string host, unsigned short port, std::filesystem::path ca_file);
  ~HttpsClient();
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  HttpReply get(const std::string& target);
  HttpReply post(const std::string& target, const std::string& body,
                 const std::string& content_type = "application/json");
  // Number of TCP connections opened so far (keep-alive check).
  int connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// JSON string escaping for building request bodies by hand.
std::string json_escape(const std::string& s);
// Extracts a top-level string field from a flat JSON object (tests only; values without escapes
// other than \n, \" and \\).
std::string json_field(const std::string& json, const std::string& name);

}  // namespace ca::testing
