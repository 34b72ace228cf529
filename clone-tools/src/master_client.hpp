#pragma once
// A blocking HTTPS client for talking to another CA instance: trusts only the CA certificate of
// the bundle, and presents the subsystem certificate when one is given (mTLS).
#include <memory>
#include <string>
#include <utility>

#include <boost/json/value.hpp>

#include "core/error.hpp"
#include "core/openssl_owners.hpp"

namespace ca::clone_tools {

struct HttpsUrl {
  std::string host;
  std::string port;
};
Result<HttpsUrl> parse_https_url(const std::string& url);

class MasterClient {
 public:
  // `client_cert`/`client_key` may be null (no client certificate).
  static Result<std::unique_ptr<MasterClient>> create(const std::string& base_url, X509* trusted_ca, X509* client_cert,
                                                      EVP_PKEY* client_key);
  ~MasterClient();

  // The JSON body of a 2xx answer; otherwise an error with the server's message and a kind that
  // follows the status (401/403 unauthorized/forbidden, 404 not_found, 409 conflict, 5xx unavailable);
  // a TLS failure (untrusted server, refused client certificate) is forbidden, no answer unavailable.
  Result<boost::json::value> get(const std::string& target);
  // The status and JSON body of any answer that has one (e.g. /readyz's 503 with its checks).
  Result<std::pair<int, boost::json::value>> get_with_status(const std::string& target);
  Result<boost::json::value> post(const std::string& target, const boost::json::value& body);
  Result<boost::json::value> remove(const std::string& target);

 private:
  struct Impl;
  explicit MasterClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ca::clone_tools
