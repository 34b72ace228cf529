#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace ca::testing {

// A fresh folder under /tmp (short paths: slapd's unix socket path must fit in 108 bytes),
// removed with everything in it when the owner goes.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ca-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago: picked at random below the kernel's
// ephemeral range (where outgoing connections never take it), checked by binding it.
unsigned short free_port();
// Writes `content` to `path` (creating folders); returns path.
std::filesystem::path write_file(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);
// The lines of `text`, without their '\n' (a last line without one included).
std::vector<std::string> lines_of(const std::string& text);
// Runs a shell command line and returns {exit code, stdout+stderr}.
struct Shell {
  int exit_code;
  std::string output;
};
Shell shell(const std::string& command);

}  // namespace ca::testing
