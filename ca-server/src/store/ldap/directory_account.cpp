#include "store/ldap/directory_account.hpp"

namespace ca::store {

std::string directory_bind_dn(const DirectorySection& directory) {
  return directory.bind_dn.empty() ? "cn=Directory Manager," + directory.suffix : directory.bind_dn;
}

}  // namespace ca::store
