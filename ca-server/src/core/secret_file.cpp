#include "core/secret_file.hpp"

#include <fstream>

#include <fmt/format.h>

namespace ca {

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
