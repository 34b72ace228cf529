#pragma once
// A blocking HTTPS client for talking to another CA instance: trusts only the CA certificate of
// the bundle, and presents the subsystem certificate when one is given (mTLS).
#include <memory>
#include <string>
#include <utility>

#include <boost/json/value.hpp>

#include "api/message_fields.hpp"
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

  // The same with the typed messages of ca-server/src/api: the request encoded, the answer decoded
  // strictly (a missing or wrongly typed field is bad_request naming it, and the target).
  template <typename Answer>
  Result<Answer> get_message(const std::string& target) {
    CA_TRY(auto body, get(target));
    return decoded_answer<Answer>(target, body);
  }
  template <typename Answer, typename Request>
  Result<Answer> post_message(const std::string& target, const Request& request) {
    CA_TRY(auto body, post(target, api::encode_message(request)));
    return decoded_answer<Answer>(target, body);
  }
  template <typename Answer>
  Result<Answer> remove_message(const std::string& target) {
    CA_TRY(auto body, remove(target));
    return decoded_answer<Answer>(target, body);
  }

 private:
  template <typename Answer>
  Result<Answer> decoded_answer(const std::string& target, const boost::json::value& body) const {
    auto answer = api::decode_message<Answer>(body);
    if (!answer) return fail(Error{answer.error().code, answer_error(target, answer.error().message)});
    return answer;
  }
  // "https://master:8443/target: the answer: <why>".
  std::string answer_error(const std::string& target, const std::string& why) const;

  struct Impl;
  explicit MasterClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ca::clone_tools
