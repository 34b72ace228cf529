#pragma once
// Secrets kept in files of their own (passwords, tokens): one line, read whole.
#include <filesystem>
#include <string>

#include "core/error.hpp"

namespace ca {

// The first line of `file`, without trailing spaces or CR. Errors (config) name the file, never
// its content: unreadable, or empty.
[[nodiscard]] Result<std::string> read_secret_file(const std::filesystem::path& file);

}  // namespace ca
