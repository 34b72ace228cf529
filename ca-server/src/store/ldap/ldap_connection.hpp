#pragma once
// One authenticated connection to the directory. Every libldap handle is owned (core/ldap_owners.hpp)
// and every failure is a ca::Error: "unavailable" when the server cannot be reached (the caller
// answers 503 and retries), "not_found"/"conflict" for the result codes callers branch on.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "store/ldap/ldap_owners.hpp"

namespace ca::store {

struct LdapEndpoint {
  std::string url;  // ldap://host:port/ or ldapi://%2Fpath%2Fsocket
  std::string bind_dn;
  std::string password;
  int timeout_ms = 3000;
  // For ldaps:// URLs: the CA certificate(s) the server's certificate must chain to (PEM); the
  // server's name is checked against the URL's host. Empty: the system's trust (ldaps) / none.
  std::string tls_ca_file;
};

// Attribute names are kept lower-cased so lookups ignore case, as LDAP does.
struct LdapEntry {
  std::string dn;
  std::map<std::string, std::vector<std::string>> attributes;

  const std::vector<std::string>* values(std::string_view name) const;
  std::optional<std::string> first(std::string_view name) const;
  std::string first_or(std::string_view name, std::string fallback = {}) const;
};

// The DN and attributes of a search result entry (LDAP_RES_SEARCH_ENTRY).
LdapEntry entry_from(LDAP* ld, LDAPMessage* message);

struct LdapAttribute {
  std::string name;
  std::vector<std::string> values;
};

// The entry an add of `attributes` at `dn` makes (as a read gives it back): for mappings and their tests.
LdapEntry entry_of(std::string dn, const std::vector<LdapAttribute>& attributes);

struct LdapModification {
  enum class Op { add, remove, replace };
  Op op;
  std::string attribute;
  std::vector<std::string> values;  // empty with remove = delete the whole attribute
};

enum class SearchScope { base, one, subtree };

struct SearchOptions {
  std::vector<std::string> attributes;  // empty = all user attributes
  int size_limit = 0;                   // 0 = server limit
};

class LdapConnection {
 public:
  static Result<std::unique_ptr<LdapConnection>> open(const LdapEndpoint& endpoint);

  Status add(const std::string& dn, const std::vector<LdapAttribute>& attributes, LDAPControl** controls = nullptr);
  Status modify(const std::string& dn, const std::vector<LdapModification>& mods, LDAPControl** controls = nullptr);
  Status remove(const std::string& dn, LDAPControl** controls = nullptr);
  Result<std::vector<LdapEntry>> search(const std::string& base, SearchScope scope, const std::string& filter,
                                        const SearchOptions& options = {});
  // Streams the entries one by one (a million revocations are not held in memory at once).
  Status search_each(const std::string& base, SearchScope scope, const std::string& filter,
                     const std::vector<std::string>& attributes, const std::function<void(const LdapEntry&)>& visit);
  // Base-object read: nullopt when the entry does not exist.
  Result<std::optional<LdapEntry>> read(const std::string& dn, const std::vector<std::string>& attributes = {});

  // Asynchronous form: sends the operation and returns its message id (0 on a send failure,
  // with the error in `error`). Collect results with wait_result().
  int add_async(const std::string& dn, const std::vector<LdapAttribute>& attributes, Error* error);
  int modify_async(const std::string& dn, const std::vector<LdapModification>& mods, Error* error);
  // Waits for the result of one operation sent with *_async (any order of arrival).
  Status wait_result(int msgid, std::string_view operation, std::string_view target);

  // True once a call failed because the server went away: the pool replaces the connection.
  bool broken() const { return broken_; }
  // For an idle connection (no answers pending): true when the server has closed it since its last
  // use (a directory restart), seen without a round trip. Marks the connection broken.
  bool stale();
  const LdapEndpoint& endpoint() const { return endpoint_; }
  LDAP* raw() { return ld_.get(); }

  // Maps a libldap result code to an Error and marks the connection broken when it is a transport error.
  Error error_from(int rc, std::string_view operation, std::string_view target, const char* server_message = nullptr);
  // The message id of an operation sent without waiting, or 0 with `error` set.
  int sent_or_zero(int rc, int msgid, std::string_view operation, const std::string& dn, Error* error);

 private:
  static Result<std::unique_ptr<LdapConnection>> open_once(const LdapEndpoint& endpoint);
  LdapConnection(ldapx::LdapHandle ld, LdapEndpoint endpoint) : ld_(std::move(ld)), endpoint_(std::move(endpoint)) {}
  ldapx::LdapHandle ld_;
  LdapEndpoint endpoint_;
  bool broken_ = false;
};

}  // namespace ca::store
