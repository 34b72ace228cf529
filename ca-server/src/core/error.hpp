#pragma once
// Errors as values: every fallible boundary returns Result<T> = std::expected<T, Error>.
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace ca {

enum class ErrorCode {
  bad_request,       // malformed input from a client (CSR, JSON, parameters)
  policy_violation,  // well-formed input that a profile rejects
  not_found,
  conflict,
  payload_too_large,
  unsupported_media,
  unauthorized,
  forbidden,
  unavailable,  // a dependency (the directory) is down: retry later
  config,       // bad configuration: start-up stops
  io,           // file system
  crypto,       // OpenSSL failed on something we built ourselves
  directory,    // the directory answered with an unexpected error
  internal,
};

std::string_view error_code_name(ErrorCode code);

struct [[nodiscard]] Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;

  static Error bad_request(std::string m) { return {ErrorCode::bad_request, std::move(m)}; }
  static Error policy(std::string m) { return {ErrorCode::policy_violation, std::move(m)}; }
  static Error not_found(std::string m) { return {ErrorCode::not_found, std::move(m)}; }
  static Error conflict(std::string m) { return {ErrorCode::conflict, std::move(m)}; }
  static Error too_large(std::string m) { return {ErrorCode::payload_too_large, std::move(m)}; }
  static Error unsupported_media(std::string m) { return {ErrorCode::unsupported_media, std::move(m)}; }
  static Error unauthorized(std::string m) { return {ErrorCode::unauthorized, std::move(m)}; }
  static Error forbidden(std::string m) { return {ErrorCode::forbidden, std::move(m)}; }
  static Error unavailable(std::string m) { return {ErrorCode::unavailable, std::move(m)}; }
  static Error config(std::string m) { return {ErrorCode::config, std::move(m)}; }
  static Error io(std::string m) { return {ErrorCode::io, std::move(m)}; }
  static Error crypto(std::string m) { return {ErrorCode::crypto, std::move(m)}; }
  static Error directory(std::string m) { return {ErrorCode::directory, std::move(m)}; }
  static Error internal(std::string m) { return {ErrorCode::internal, std::move(m)}; }

  bool is(ErrorCode c) const { return code == c; }
  // "what failed: why" chaining that keeps the original code.
  Error context(std::string_view what) const { return {code, std::string(what) + ": " + message}; }
};

// std::expected that must be looked at: a Result (or Status) left unused is a compiler warning, an
// error under CA_WERROR. Discard one on purpose with `(void)`, saying why.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result(const std::expected<T, Error>& e) : std::expected<T, Error>(e) {}
  Result(std::expected<T, Error>&& e) : std::expected<T, Error>(std::move(e)) {}
};
using Status = Result<void>;

inline Status ok() { return {}; }
inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }

}  // namespace ca

// Early return on error. CA_TRY(auto x, expr) binds the value; CA_CHECK(expr) for Status.
// `decl` is a declaration or an lvalue and `tmp` a name: neither can be put in parentheses.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define CA_CONCAT_INNER(a, b) a##b
#define CA_CONCAT(a, b) CA_CONCAT_INNER(a, b)
#define CA_TRY_IMPL(tmp, decl, expr)                                     \
  auto tmp = (expr);                                                     \
  if (!tmp) return std::unexpected<::ca::Error>(std::move(tmp).error()); \
  decl = std::move(*tmp)
#define CA_TRY(decl, expr) CA_TRY_IMPL(CA_CONCAT(ca_try_, __LINE__), decl, expr)
// NOLINTEND(bugprone-macro-parentheses)
#define CA_CHECK(expr)                                                                             \
  do {                                                                                             \
    auto ca_check_status = (expr);                                                                 \
    if (!ca_check_status) return std::unexpected<::ca::Error>(std::move(ca_check_status).error()); \
  } while (0)
