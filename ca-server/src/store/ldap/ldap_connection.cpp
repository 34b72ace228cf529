#include "store/ldap/ldap_connection.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <poll.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace ca::store {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Owned arrays of LDAPMod built from our value types; berval pointers refer into the source vectors.
class ModArray {
 public:
  void push(int op, const std::string& attr, const std::vector<std::string>& values) {
    auto& bvs = bervals_.emplace_back();
    for (const auto& v : values) bvs.push_back(berval{static_cast<ber_len_t>(v.size()), const_cast<char*>(v.data())});
    auto& ptrs = value_ptrs_.emplace_back();
    for (auto& bv : bvs) ptrs.push_back(&bv);
    ptrs.push_back(nullptr);
    LDAPMod m{};
    m.mod_op = op | LDAP_MOD_BVALUES;
    m.mod_type = const_cast<char*>(attr.c_str());
    m.mod_bvalues = values.empty() ? nullptr : ptrs.data();
    mods_.push_back(m);
  }
  // Moving keeps the addresses: a deque's move takes over its blocks.
  static ModArray of(const std::vector<LdapAttribute>& attributes) {
    ModArray out;
    for (const auto& a : attributes) out.push(LDAP_MOD_ADD, a.name, a.values);
    return out;
  }
  static ModArray of(const std::vector<LdapModification>& mods) {
    ModArray out;
    for (const auto& m : mods) {
      int op = m.op == LdapModification::Op::add      ? LDAP_MOD_ADD
               : m.op == LdapModification::Op::remove ? LDAP_MOD_DELETE
                                                      : LDAP_MOD_REPLACE;
      out.push(op, m.attribute, m.values);
    }
    return out;
  }
  LDAPMod** get() {
    ptrs_.clear();
    for (auto& m : mods_) ptrs_.push_back(&m);
    ptrs_.push_back(nullptr);
    return ptrs_.data();
  }

 private:
  // deques: pushing never moves earlier elements, so the pointers handed to libldap stay valid.
  std::deque<std::vector<berval>> bervals_;
  std::deque<std::vector<berval*>> value_ptrs_;
  std::deque<LDAPMod> mods_;
  std::vector<LDAPMod*> ptrs_;
};

timeval to_timeval(int ms) { return timeval{ms / 1000, static_cast<__suseconds_t>((ms % 1000) * 1000)}; }

// libldap does not bound the TLS handshake of an ldaps:// connection by its network timeout: with
// GnuTLS it spins for ever against a peer that accepted the TCP connection and then stopped
// answering (a slapd frozen with SIGSTOP, a hung host behind a live kernel). While open_once()
// connects and binds, this watchdog shuts the new socket down once the endpoint's timeout has
// passed: the handshake (or bind) fails, and the caller gets "unreachable". libldap hands the
// socket over through its connect callback, on the connecting thread.
class ConnectWatchdog {
 public:
  explicit ConnectWatchdog(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  ~ConnectWatchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  ConnectWatchdog(const ConnectWatchdog&) = delete;
  ConnectWatchdog& operator=(const ConnectWatchdog&) = delete;

  void watch(ber_socket_t fd) {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || done_) return;
    thread_ = std::thread([this, fd] {
      std::unique_lock lock(mutex_);
      if (!wake_.wait_for(lock, timeout_, [this] { return done_; })) ::shutdown(fd, SHUT_RDWR);
    });
  }

 private:
  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

thread_local ConnectWatchdog* t_connect_watchdog = nullptr;

int on_connected(LDAP*, Sockbuf* sb, LDAPURLDesc*, sockaddr*, ldap_conncb*) {
  ber_socket_t fd = -1;
  if (t_connect_watchdog && ber_sockbuf_ctrl(sb, LBER_SB_OPT_GET_FD, &fd) == 1 && fd >= 0)
    t_connect_watchdog->watch(fd);
  return 0;
}
void on_closing(LDAP*, Sockbuf*, ldap_conncb*) {}
// libldap keeps a pointer to it for the handle's lifetime: static.
ldap_conncb g_connect_callbacks{on_connected, on_closing, nullptr};

}  // namespace

const std::vector<std::string>* LdapEntry::values(std::string_view name) const {
  auto it = attributes.find(lower(name));
  return it == attributes.end() ? nullptr : &it->second;
}

std::optional<std::string> LdapEntry::first(std::string_view name) const {
  const auto* v = values(name);
  if (!v || v->empty()) return std::nullopt;
  return v->front();
}

std::string LdapEntry::first_or(std::string_view name, std::string fallback) const {
  auto v = first(name);
  return v ? *v : std::move(fallback);
}

LdapEntry entry_of(std::string dn, const std::vector<LdapAttribute>& attributes) {
  LdapEntry entry;
  entry.dn = std::move(dn);
  for (const auto& a : attributes) {
    auto& values = entry.attributes[lower(a.name)];
    values.insert(values.end(), a.values.begin(), a.values.end());
  }
  return entry;
}

Result<std::unique_ptr<LdapConnection>> LdapConnection::open(const LdapEndpoint& endpoint) {
  // libldap writes to its socket with plain write(2): when the directory goes away, the next
  // request raises SIGPIPE, which would kill the whole process instead of returning an error.
  // OpenLDAP expects its clients to ignore the signal, so every process using the store does.
  static std::once_flag sigpipe_ignored;
  std::call_once(sigpipe_ignored, [] { std::signal(SIGPIPE, SIG_IGN); });
  // A fresh loopback connection occasionally fails inside libldap's non-blocking connect
  // (ENOTCONN / ECONNRESET, seen with slapd 2.5 here); a server that is really down fails every
  // attempt, so a few quick retries cost nothing when it is down and hide the glitch when it is up.
  Result<std::unique_ptr<LdapConnection>> last = fail(Error::unavailable("not tried"));
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    const auto started = std::chrono::steady_clock::now();
    last = open_once(endpoint);
    if (last || !last.error().is(ErrorCode::unavailable)) return last;
    // A directory that let the attempt run into its timeout (alive but frozen, or a black hole)
    // is not retried: the caller's own time bound matters more than a glitch.
    if (std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(endpoint.timeout_ms / 2)) break;
  }
  return last;
}

Result<std::unique_ptr<LdapConnection>> LdapConnection::open_once(const LdapEndpoint& endpoint) {
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, endpoint.url.c_str());
  if (rc != LDAP_SUCCESS || !raw)
    return fail(Error::config(fmt::format("directory URL '{}' is not usable: {}", endpoint.url, ldap_err2string(rc))));
  ldapx::LdapHandle ld(raw);
  int version = LDAP_VERSION3;
  ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
  timeval tv = to_timeval(endpoint.timeout_ms);
  ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &tv);
  ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &tv);
  ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  if (!endpoint.tls_ca_file.empty()) {
    // Per connection (a new TLS context): trust this CA only, and demand a valid certificate
    // that names the host of the URL.
    int demand = LDAP_OPT_X_TLS_DEMAND;
    int new_context = 0;
    if (ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, endpoint.tls_ca_file.c_str()) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &demand) != LDAP_OPT_SUCCESS ||
        ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &new_context) != LDAP_OPT_SUCCESS)
      return fail(Error::config(
          fmt::format("cannot set up TLS for {} with the CA file {}", endpoint.url, endpoint.tls_ca_file)));
  }
  berval cred{static_cast<ber_len_t>(endpoint.password.size()), const_cast<char*>(endpoint.password.data())};
  {
    // The bind opens the connection: TCP, TLS, then the bind itself, all within the timeout.
    ConnectWatchdog watchdog{std::chrono::milliseconds(endpoint.timeout_ms)};
    if (endpoint.url.starts_with("ldaps://")) {
      t_connect_watchdog = &watchdog;
      ldap_set_option(ld.get(), LDAP_OPT_CONNECT_CB, &g_connect_callbacks);
    }
    rc = ldap_sasl_bind_s(ld.get(), endpoint.bind_dn.empty() ? nullptr : endpoint.bind_dn.c_str(), LDAP_SASL_SIMPLE,
                          &cred, nullptr, nullptr, nullptr);
    t_connect_watchdog = nullptr;
  }
  if (rc != LDAP_SUCCESS) {
    char* diag = nullptr;
    ldap_get_option(ld.get(), LDAP_OPT_DIAGNOSTIC_MESSAGE, static_cast<void*>(&diag));
    ldapx::LdapString owned_diag(diag);
    std::string why = ldap_err2string(rc);
    if (diag && *diag) why += fmt::format(" ({})", diag);
    if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT || rc == LDAP_UNAVAILABLE ||
        rc == LDAP_BUSY)
      return fail(Error::unavailable(fmt::format("directory {} is unreachable: {}", endpoint.url, why)));
    return fail(Error::directory(fmt::format("bind to {} as '{}' failed: {}", endpoint.url, endpoint.bind_dn, why)));
  }
  return std::unique_ptr<LdapConnection>(new LdapConnection(std::move(ld), endpoint));
}

Error LdapConnection::error_from(int rc, std::string_view operation, std::string_view target,
                                 const char* server_message) {
  std::string detail = ldap_err2string(rc);
  if (server_message && *server_message) detail += fmt::format(" ({})", server_message);
  std::string text = fmt::format("directory {} of '{}' failed: {}", operation, target, detail);
  switch (rc) {
    case LDAP_SERVER_DOWN:
    case LDAP_CONNECT_ERROR:
    case LDAP_TIMEOUT:
      broken_ = true;
      return Error::unavailable(
          fmt::format("directory {} is unreachable ({} of '{}': {})", endpoint_.url, operation, target, detail));
    case LDAP_UNAVAILABLE:
    case LDAP_BUSY:
      return Error::unavailable(text);
    case LDAP_DECODING_ERROR:  // e.g. a failed txn commit: the stream may be out of step, reconnect
      broken_ = true;
      return Error::directory(text);
    case LDAP_NO_SUCH_OBJECT:
      return Error::not_found(text);
    case LDAP_ALREADY_EXISTS:
    case LDAP_NO_SUCH_ATTRIBUTE:
    case LDAP_TYPE_OR_VALUE_EXISTS:
    case LDAP_ASSERTION_FAILED:
      return Error::conflict(text);
    default:
      return Error::directory(text);
  }
}

Status LdapConnection::add(const std::string& dn, const std::vector<LdapAttribute>& attributes,
                           LDAPControl** controls) {
  auto mods = ModArray::of(attributes);
  int rc = ldap_add_ext_s(ld_.get(), dn.c_str(), mods.get(), controls, nullptr);
  if (rc != LDAP_SUCCESS) return fail(error_from(rc, "add", dn));
  return ok();
}

Status LdapConnection::modify(const std::string& dn, const std::vector<LdapModification>& mods,
                              LDAPControl** controls) {
  auto array = ModArray::of(mods);
  int rc = ldap_modify_ext_s(ld_.get(), dn.c_str(), array.get(), controls, nullptr);
  if (rc != LDAP_SUCCESS) return fail(error_from(rc, "modify", dn));
  return ok();
}

int LdapConnection::sent_or_zero(int rc, int msgid, std::string_view operation, const std::string& dn, Error* error) {
  if (rc == LDAP_SUCCESS) return msgid;
  if (error) *error = error_from(rc, operation, dn);
  return 0;
}

int LdapConnection::add_async(const std::string& dn, const std::vector<LdapAttribute>& attributes, Error* error) {
  auto mods = ModArray::of(attributes);
  int msgid = 0;
  int rc = ldap_add_ext(ld_.get(), dn.c_str(), mods.get(), nullptr, nullptr, &msgid);
  return sent_or_zero(rc, msgid, "add", dn, error);
}

int LdapConnection::modify_async(const std::string& dn, const std::vector<LdapModification>& mods, Error* error) {
  auto array = ModArray::of(mods);
  int msgid = 0;
  int rc = ldap_modify_ext(ld_.get(), dn.c_str(), array.get(), nullptr, nullptr, &msgid);
  return sent_or_zero(rc, msgid, "modify", dn, error);
}

Status LdapConnection::wait_result(int msgid, std::string_view operation, std::string_view target) {
  timeval tv = to_timeval(std::max(endpoint_.timeout_ms, 10000));
  LDAPMessage* raw = nullptr;
  int rc = ldap_result(ld_.get(), msgid, LDAP_MSG_ALL, &tv, &raw);
  ldapx::Message msg(raw);
  if (rc == 0) {
    broken_ = true;
    return fail(Error::unavailable(fmt::format("directory {} of '{}' timed out", operation, target)));
  }
  if (rc < 0) {
    int err = LDAP_SERVER_DOWN;
    ldap_get_option(ld_.get(), LDAP_OPT_RESULT_CODE, &err);
    return fail(error_from(err, operation, target));
  }
  int err = LDAP_SUCCESS;
  char* text = nullptr;
  int prc = ldap_parse_result(ld_.get(), msg.get(), &err, nullptr, &text, nullptr, nullptr, 0);
  ldapx::LdapString owned(text);
  if (prc != LDAP_SUCCESS) return fail(error_from(prc, operation, target));
  if (err != LDAP_SUCCESS) return fail(error_from(err, operation, target, text));
  return ok();
}

Status LdapConnection::remove(const std::string& dn, LDAPControl** controls) {
  int rc = ldap_delete_ext_s(ld_.get(), dn.c_str(), controls, nullptr);
  if (rc != LDAP_SUCCESS) return fail(error_from(rc, "delete", dn));
  return ok();
}

LdapEntry entry_from(LDAP* ld, LDAPMessage* e) {
  LdapEntry entry;
  ldapx::LdapString dn(ldap_get_dn(ld, e));
  if (dn) entry.dn = dn.get();
  BerElement* ber_raw = nullptr;
  for (char* a = ldap_first_attribute(ld, e, &ber_raw); a; a = ldap_next_attribute(ld, e, ber_raw)) {
    ldapx::LdapString name(a);
    ldapx::Values vals(ldap_get_values_len(ld, e, a));
    auto& out = entry.attributes[lower(a)];
    if (vals)
      for (berval** v = vals.get(); *v; ++v) out.emplace_back((*v)->bv_val, (*v)->bv_len);
  }
  ldapx::BerElementPtr ber(ber_raw);
  return entry;
}

Result<std::vector<LdapEntry>> LdapConnection::search(const std::string& base, SearchScope scope,
                                                      const std::string& filter, const SearchOptions& options) {
  std::vector<char*> attrs;
  attrs.reserve(options.attributes.size());
  for (const auto& a : options.attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);
  int ldap_scope = scope == SearchScope::base  ? LDAP_SCOPE_BASE
                   : scope == SearchScope::one ? LDAP_SCOPE_ONELEVEL
                                               : LDAP_SCOPE_SUBTREE;
  timeval tv = to_timeval(endpoint_.timeout_ms);
  LDAPMessage* raw = nullptr;
  int rc = ldap_search_ext_s(ld_.get(), base.c_str(), ldap_scope, filter.c_str(),
                             options.attributes.empty() ? nullptr : attrs.data(), 0, nullptr, nullptr, &tv,
                             options.size_limit, &raw);
  ldapx::Message result(raw);
  if (rc != LDAP_SUCCESS && rc != LDAP_SIZELIMIT_EXCEEDED)
    return fail(error_from(rc, "search", fmt::format("{} {}", base, filter)));
  std::vector<LdapEntry> entries;
  for (LDAPMessage* e = ldap_first_entry(ld_.get(), result.get()); e; e = ldap_next_entry(ld_.get(), e))
    entries.push_back(entry_from(ld_.get(), e));
  return entries;
}

Status LdapConnection::search_each(const std::string& base, SearchScope scope, const std::string& filter,
                                   const std::vector<std::string>& attributes,
                                   const std::function<void(const LdapEntry&)>& visit) {
  std::vector<char*> attrs;
  attrs.reserve(attributes.size());
  for (const auto& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);
  int ldap_scope = scope == SearchScope::base  ? LDAP_SCOPE_BASE
                   : scope == SearchScope::one ? LDAP_SCOPE_ONELEVEL
                                               : LDAP_SCOPE_SUBTREE;
  int msgid = 0;
  int rc = ldap_search_ext(ld_.get(), base.c_str(), ldap_scope, filter.c_str(),
                           attributes.empty() ? nullptr : attrs.data(), 0, nullptr, nullptr, nullptr, 0, &msgid);
  if (rc != LDAP_SUCCESS) return fail(error_from(rc, "search", fmt::format("{} {}", base, filter)));
  // Generous per-message timeout: a long stream is fine as long as it keeps moving.
  timeval tv = to_timeval(std::max(endpoint_.timeout_ms, 30000));
  while (true) {
    LDAPMessage* raw = nullptr;
    rc = ldap_result(ld_.get(), msgid, LDAP_MSG_ONE, &tv, &raw);
    ldapx::Message msg(raw);
    if (rc == 0) {
      ldap_abandon_ext(ld_.get(), msgid, nullptr, nullptr);
      broken_ = true;
      return fail(Error::unavailable(fmt::format("directory search of {} timed out", base)));
    }
    if (rc < 0) {
      int err = LDAP_SERVER_DOWN;
      ldap_get_option(ld_.get(), LDAP_OPT_RESULT_CODE, &err);
      return fail(error_from(err, "search", fmt::format("{} {}", base, filter)));
    }
    if (rc == LDAP_RES_SEARCH_ENTRY) {
      visit(entry_from(ld_.get(), msg.get()));
      continue;
    }
    if (rc == LDAP_RES_SEARCH_RESULT) {
      int err = LDAP_SUCCESS;
      char* text = nullptr;
      ldap_parse_result(ld_.get(), msg.get(), &err, nullptr, &text, nullptr, nullptr, 0);
      ldapx::LdapString owned(text);
      if (err != LDAP_SUCCESS && err != LDAP_NO_SUCH_OBJECT)
        return fail(error_from(err, "search", fmt::format("{} {}", base, filter), text));
      return ok();
    }
    // References and intermediate messages are ignored.
  }
}

Result<std::optional<LdapEntry>> LdapConnection::read(const std::string& dn,
                                                      const std::vector<std::string>& attributes) {
  auto found = search(dn, SearchScope::base, "(objectClass=*)", SearchOptions{attributes, 0});
  if (!found) {
    if (found.error().is(ErrorCode::not_found)) return std::optional<LdapEntry>{};
    return fail(found.error());
  }
  if (found->empty()) return std::optional<LdapEntry>{};
  return std::optional<LdapEntry>(std::move(found->front()));
}

bool LdapConnection::stale() {
  if (broken_) return true;
  int fd = -1;
  if (ldap_get_option(ld_.get(), LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0) return false;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  // An idle connection has no answers pending, so anything readable is end-of-file or the server's
  // notice of disconnection (RFC 4511 4.4.1): either way it is going away.
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLIN)) broken_ = true;
  return broken_;
}

}  // namespace ca::store
