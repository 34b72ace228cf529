#include "store/ldap/directory_watch.hpp"

#include <cstddef>
#include <memory>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/ldap/ldap_owners.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "watch";

// syncRequestValue ::= SEQUENCE { mode ENUMERATED { refreshOnly(1), refreshAndPersist(3) }, ... }
// A BerElement this code encodes into owns its buffer too (ber_free(.., 1)); ldapx::BerElementPtr is
// for the ones libldap hands out while reading attributes, whose buffer is not theirs.
struct EncodingBerDeleter {
  void operator()(BerElement* p) const noexcept { ber_free(p, 1); }
};

Result<ldapx::ControlPtr> refresh_and_persist_control() {
  std::unique_ptr<BerElement, EncodingBerDeleter> ber(ber_alloc_t(LBER_USE_DER));
  if (!ber || ber_printf(ber.get(), "{e}", static_cast<ber_int_t>(3)) < 0)
    return fail(Error::internal("cannot encode the sync request control"));
  berval* raw = nullptr;
  if (ber_flatten(ber.get(), &raw) < 0) return fail(Error::internal("cannot encode the sync request control"));
  ldapx::BervalPtr value(raw);
  LDAPControl* control = nullptr;
  if (ldap_control_create(LDAP_CONTROL_SYNC, 1, value.get(), 1, &control) != LDAP_SUCCESS)
    return fail(Error::internal("cannot make the sync request control"));
  return ldapx::ControlPtr(control);
}

int ldap_scope_of(SearchScope s) {
  switch (s) {
    case SearchScope::base:
      return LDAP_SCOPE_BASE;
    case SearchScope::one:
      return LDAP_SCOPE_ONELEVEL;
    default:
      return LDAP_SCOPE_SUBTREE;
  }
}
}  // namespace

DirectoryWatch::DirectoryWatch(LdapEndpoint endpoint, std::string base, SearchScope scope, std::string filter,
                               std::function<void()> on_change)
    : endpoint_(std::move(endpoint)),
      base_(std::move(base)),
      scope_(scope),
      filter_(std::move(filter)),
      on_change_(std::move(on_change)) {}

DirectoryWatch::~DirectoryWatch() { stop(); }

void DirectoryWatch::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void DirectoryWatch::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool DirectoryWatch::sleep_unless_stopped(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, d, [this] { return stopping_; });
}

void DirectoryWatch::loop() {
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    const auto started = std::chrono::steady_clock::now();
    Status ended = follow_once();
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(200);
    if (!ended)
      log::debug(kLog, "watch of {} ended ({}); again in {} ms", base_, ended.error().message, backoff.count());
    if (!sleep_unless_stopped(backoff)) return;
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

Status DirectoryWatch::follow_once() {
  CA_TRY(auto conn, LdapConnection::open(endpoint_));
  CA_TRY(auto control, refresh_and_persist_control());
  LDAPControl* controls[] = {control.get(), nullptr};
  // No attributes unless an entry handler wants them: the caller reads what it needs.
  std::vector<char*> attrs;
  attrs.reserve(attributes_.size());
  for (const auto& a : attributes_) attrs.push_back(const_cast<char*>(a.c_str()));
  if (attrs.empty()) attrs.push_back(const_cast<char*>("1.1"));
  attrs.push_back(nullptr);
  int msgid = 0;
  LDAP* ld = conn->raw();
  int rc = ldap_search_ext(ld, base_.c_str(), ldap_scope_of(scope_), filter_.c_str(), attrs.data(), 0, controls,
                           nullptr, nullptr, 0, &msgid);
  if (rc != LDAP_SUCCESS) return fail(Error::unavailable(fmt::format("persistent search: {}", ldap_err2string(rc))));
  bool refreshed = false;
  if (on_entry_) on_entry_(Event::refresh_begin, nullptr);
  auto report = [this] {
    ++changes_;
    on_change_();  // cheap by contract: callers set a flag and wake their own thread
  };
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) {
        ldap_abandon_ext(ld, msgid, nullptr, nullptr);
        return ok();
      }
    }
    timeval tv{0, static_cast<__suseconds_t>(250 * 1000)};  // how often stop() is noticed
    LDAPMessage* raw = nullptr;
    rc = ldap_result(ld, msgid, LDAP_MSG_ONE, &tv, &raw);
    ldapx::Message msg(raw);
    if (rc < 0) return fail(Error::unavailable("the directory closed the persistent search"));
    if (rc == 0) continue;
    switch (ldap_msgtype(msg.get())) {
      case LDAP_RES_SEARCH_ENTRY:
        // During the refresh phase these are the present entries; afterwards, each is a change.
        if (on_entry_) {
          const LdapEntry entry = entry_from(ld, msg.get());
          on_entry_(refreshed ? Event::changed : Event::refresh_entry, &entry);
        }
        if (refreshed) report();
        break;
      case LDAP_RES_INTERMEDIATE: {
        // syncInfoValue (RFC 4533 section 2.5): [0] newcookie comes with every change anywhere in the
        // database and says nothing about our entries; [1] refreshDelete / [2] refreshPresent end
        // the refresh phase; [3] syncIdSet lists entries (present or deleted): look again.
        char* oid = nullptr;
        berval* data = nullptr;
        ldap_parse_intermediate(ld, msg.get(), &oid, &data, nullptr, 0);
        ldapx::LdapString owned_oid(oid);
        ldapx::BervalPtr owned_data(data);
        const unsigned char tag = data && data->bv_len ? static_cast<unsigned char>(data->bv_val[0]) : 0;
        if (tag == 0x80) break;  // newcookie
        if (!refreshed) {
          log::debug(kLog, "following {} (refresh done)", base_);
          if (on_entry_) on_entry_(Event::refresh_end, nullptr);
        }
        refreshed = true;
        report();
        break;
      }
      case LDAP_RES_SEARCH_RESULT: {
        int err = LDAP_SUCCESS;
        ldap_parse_result(ld, msg.get(), &err, nullptr, nullptr, nullptr, nullptr, 0);
        // Reported after the fact too: whatever happened before the search ended is looked at.
        report();
        return fail(Error::unavailable(fmt::format("the persistent search ended: {}", ldap_err2string(err))));
      }
      default:
        break;
    }
  }
}

}  // namespace ca::store
