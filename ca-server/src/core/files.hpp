#pragma once
// Reading files: the one helper for a whole file, and the one for a secret kept in a file of its
// own (passwords, tokens).
#include <filesystem>
#include <string>

#include "core/error.hpp"

namespace ca {

// The whole content of `file`, as bytes. Error::io "cannot read <file>: <reason>" when it cannot.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& file);

// The first line of `file`, without trailing spaces or CR. Errors (config) name the file, never
// its content: unreadable, or empty.
[[nodiscard]] Result<std::string> read_secret_file(const std::filesystem::path& file);

}  // namespace ca
