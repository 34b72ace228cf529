#pragma once
// The account ca-server binds to its own directory with.
#include <string>

#include "core/config.hpp"

namespace ca::store {

// directory.bind_dn when configured, else the directory's root: cn=Directory Manager,<suffix>.
std::string directory_bind_dn(const DirectorySection& directory);

}  // namespace ca::store
