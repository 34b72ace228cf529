#pragma once
// Owners for libldap handles, in the same style as the OpenSSL ones.
#include <memory>

#include <ldap.h>

namespace ca::ldapx {

struct LdapDeleter {
  void operator()(LDAP* p) const noexcept { ldap_unbind_ext_s(p, nullptr, nullptr); }
};
struct MessageDeleter {
  void operator()(LDAPMessage* p) const noexcept { ldap_msgfree(p); }
};
struct BerElementDeleter {
  void operator()(BerElement* p) const noexcept { ber_free(p, 0); }
};
struct ControlDeleter {
  void operator()(LDAPControl* p) const noexcept { ldap_control_free(p); }
};
struct BervalDeleter {
  void operator()(berval* p) const noexcept { ber_bvfree(p); }
};
struct ValuesDeleter {
  void operator()(berval** p) const noexcept { ldap_value_free_len(p); }
};
struct LdapMemDeleter {
  void operator()(void* p) const noexcept { ldap_memfree(p); }
};

using LdapHandle = std::unique_ptr<LDAP, LdapDeleter>;
using Message = std::unique_ptr<LDAPMessage, MessageDeleter>;
using BerElementPtr = std::unique_ptr<BerElement, BerElementDeleter>;
using ControlPtr = std::unique_ptr<LDAPControl, ControlDeleter>;
using BervalPtr = std::unique_ptr<berval, BervalDeleter>;
using Values = std::unique_ptr<berval*, ValuesDeleter>;
using LdapString = std::unique_ptr<char, LdapMemDeleter>;

}  // namespace ca::ldapx
