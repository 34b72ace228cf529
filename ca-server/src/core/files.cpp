#include "core/files.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace ca {

Result<std::string> read_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    return fail(Error::io(fmt::format("cannot read {}: it is a folder", file.string())));
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

namespace ca {

namespace {

// RFC 3986 pchar plus "/": unreserved, sub-delims, ":" and "@".
bool is_path_character(unsigned char c) {
  if (std::isalnum(c)) return true;
  return std::string_view("-._~!$&'()*+,;=:@/").find(static_cast<char>(c)) != std::string_view::npos;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decoded(std::string_view text, std::string_view uri) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    // %00 would end the path early when it reaches open(2).
    if (high < 0 || low < 0 || (high == 0 && low == 0))
      return fail(Error::config(fmt::format("'{}': a broken percent escape in the file URI", uri)));
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

}  // namespace

std::string file_uri(const std::filesystem::path& file) {
  std::error_code ec;
  const std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  std::string uri = "file:";
  for (unsigned char c : (ec ? file : absolute).lexically_normal().string()) {
    if (is_path_character(c))
      uri += static_cast<char>(c);
    else
      uri += fmt::format("%{:02X}", c);
  }
  return uri;
}

Result<std::filesystem::path> path_of_file_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "file:";
  if (uri.substr(0, kScheme.size()) != kScheme) return fail(Error::config(fmt::format("'{}' is not a file URI", uri)));
  std::string_view rest = uri.substr(kScheme.size());
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    const std::size_t slash = rest.find('/');
    const std::string_view host = rest.substr(0, slash);
    if (!host.empty() && host != "localhost")
      return fail(Error::config(fmt::format("'{}': a file URI of another host ('{}')", uri, host)));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  }
  if (rest.empty() || rest.front() != '/')
    return fail(Error::config(fmt::format("'{}': a file URI names an absolute path (file:/path/key.pem)", uri)));
  CA_TRY(std::string path, percent_decoded(rest, uri));
  return std::filesystem::path(path);
}

}  // namespace ca
