#include "core/child_process.hpp"

#include <csignal>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

namespace ca {

namespace {
// A child inherits the signal mask and ignored signals through exec: ca-server blocks SIGTERM in
// all threads (one thread sigwaits), which would leave slapd deaf to SIGTERM.
void reset_signals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
}
}  // namespace

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    terminate();
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

ChildProcess::~ChildProcess() { terminate(); }

Result<ChildProcess> ChildProcess::spawn(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                                         bool die_with_parent) {
  if (argv.empty()) return fail(Error::internal("spawn: empty command"));
  std::vector<char*> args;
  args.reserve(argv.size());
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string log = log_file.empty() ? "/dev/null" : log_file.string();
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return fail(Error::io(fmt::format("cannot open log file {}: {}", log, std::strerror(errno))));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return fail(Error::io(fmt::format("fork for {} failed: {}", argv[0], std::strerror(errno))));
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      // Its own process group: a terminal's Ctrl-C (sent to the whole foreground group) reaches
      // only the parent, which stops the child in its own order.
      ::setpgid(0, 0);
    }
    reset_signals();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  return ChildProcess(pid);
}

std::optional<int> ChildProcess::try_wait() {
  if (pid_ <= 0) return std::nullopt;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    return status;
  }
  return std::nullopt;
}

int ChildProcess::wait() {
  if (pid_ <= 0) return -1;
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return status;
}

int ChildProcess::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto st = try_wait()) return *st;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  return wait();
}

Result<CommandResult> run_command(const std::vector<std::string>& argv, const std::string& stdin_text) {
  if (argv.empty()) return fail(Error::internal("run_command: empty command"));
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    return fail(Error::io(fmt::format("pipe failed: {}", std::strerror(errno))));
  std::vector<char*> args;
  args.reserve(argv.size());
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail(Error::io(fmt::format("fork failed: {}", std::strerror(errno))));
  if (pid == 0) {
    reset_signals();
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(out_pipe[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  // Small inputs only (LDIF, passwords): write all, then read all.
  std::size_t off = 0;
  while (off < stdin_text.size()) {
    ssize_t n = ::write(in_pipe[1], stdin_text.data() + off, stdin_text.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::close(in_pipe[1]);
  CommandResult res;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_pipe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) res.output.append(buf, static_cast<std::size_t>(n));
  ::close(out_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

}  // namespace ca
