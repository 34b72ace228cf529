#pragma once
#include <filesystem>
#include <string>

#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

// Adds the base DIT (schema/base-dit.ldif with @SUFFIX@ replaced) unless the suffix entry exists.
// Run it against ONE provider of a multi-provider set: the others receive it by replication.
Status load_base_dit(const LdapEndpoint& endpoint, const std::string& suffix, const std::filesystem::path& schema_dir);

// Adds the containers later versions brought (schema/base-dit.ldif has them for new directories)
// to a directory made by an earlier version, if its suffix entry is there; run at every start.
// One directory adding them is enough (they replicate); two adding them at once is harmless.
Status add_missing_containers(const LdapEndpoint& endpoint, const std::string& suffix);

}  // namespace ca::store
