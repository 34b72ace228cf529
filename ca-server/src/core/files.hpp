#pragma once
// Reading files: the one helper for a whole file, and the one for a secret kept in a file of its
// own (passwords, tokens).
#include <filesystem>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca {

// The whole content of `file`, as bytes. Error::io "cannot read <file>: <reason>" when it cannot.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& file);

// The first line of `file`, without trailing spaces or CR. Errors (config) name the file, never
// its content: unreadable, or empty.
[[nodiscard]] Result<std::string> read_secret_file(const std::filesystem::path& file);

// RFC 8089 file URIs, the names of keys kept in files: "file:/abs/path" with the octets outside
// RFC 3986's path characters percent-encoded; a relative `file` is made absolute first.
[[nodiscard]] std::string file_uri(const std::filesystem::path& file);
// The absolute path a file URI names: "file:/p", "file:///p" and "file://localhost/p", percent
// escapes decoded. Error::config for another host, a relative path or a broken escape.
[[nodiscard]] Result<std::filesystem::path> path_of_file_uri(std::string_view uri);

}  // namespace ca
