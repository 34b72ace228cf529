#pragma once
#include <filesystem>
#include <string>

#include "store/ldap_connection.hpp"

namespace ca::store {

// Adds the base DIT (schema/base-dit.ldif with @SUFFIX@ replaced) unless the suffix entry exists.
// Run it against ONE provider of a multi-provider set: the others receive it by replication.
Status load_base_dit(const LdapEndpoint& endpoint, const std::string& suffix, const std::filesystem::path& schema_dir);

}  // namespace ca::store
