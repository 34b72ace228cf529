#include "core/files.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace ca {

Result<std::string> read_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) return fail(Error::io(fmt::format("cannot read {}: it is a folder", file.string())));
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  return std::move(text).str();
}

Result<std::string> read_secret_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return fail(Error::config(fmt::format("{}: password file cannot be read", file.string())));
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.empty()) return fail(Error::config(fmt::format("{}: password file is empty", file.string())));
  return line;
}

}  // namespace ca
