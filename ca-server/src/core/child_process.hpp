#pragma once
// A child process we started and therefore own: stopped by PID (never by name) when the owner goes.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/error.hpp"

namespace ca {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ChildProcess(ChildProcess&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ~ChildProcess();  // terminate(): SIGTERM, then SIGKILL after a grace period

  // Starts argv[0] (an absolute path) with stdout+stderr appended to `log_file` (or /dev/null).
  // With `die_with_parent`, the kernel sends SIGTERM to the child when the calling thread exits,
  // and the child is put in a process group of its own, so that only its parent stops it (a
  // terminal's Ctrl-C goes to the parent alone).
  static Result<ChildProcess> spawn(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                                    bool die_with_parent);

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Non-blocking: the exit status if the child has ended (the PID is then released).
  std::optional<int> try_wait();
  // Blocks until the child ends; returns its wait status.
  int wait();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the wait status (or -1 if none was running).
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Gives up ownership without stopping the process.
  pid_t release() { return std::exchange(pid_, -1); }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

// Runs a command to completion, capturing stdout+stderr; returns {exit status, output}.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
Result<CommandResult> run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "");

}  // namespace ca
