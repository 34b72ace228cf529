// ChildProcess: children we start are owned, logged, stopped by PID; owned servers (slapd under
// ca-server) sit in a process group of their own so a terminal's Ctrl-C reaches only the parent.
#include "core/child_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace ca {
namespace {

namespace fs = std::filesystem;

fs::path temp_log(const char* name) {
  auto p = fs::temp_directory_path() / (std::string("child-process-test-") + name + "-" + std::to_string(::getpid()));
  fs::remove(p);
  return p;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ChildProcess, AnOwnedChildHasItsOwnProcessGroupAndStopsOnSigterm) {
  auto child = ChildProcess::spawn({"/bin/sleep", "30"}, {}, true);
  ASSERT_TRUE(child) << child.error().message;
  pid_t pid = child->pid();
  // The child calls setpgid itself; give it a moment to get there.
  pid_t group = -1;
  for (int i = 0; i < 100 && group != pid; ++i) {
    group = ::getpgid(pid);
    if (group != pid) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(group, pid) << "not in a process group of its own";
  EXPECT_NE(group, ::getpgrp());
  int status = child->terminate(std::chrono::seconds(5));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
  EXPECT_FALSE(child->running());
  EXPECT_EQ(::kill(pid, 0), -1) << "the PID is still there after terminate()";
}

TEST(ChildProcess, AnUnownedChildStaysInOurProcessGroup) {
  auto child = ChildProcess::spawn({"/bin/sleep", "30"}, {}, false);
  ASSERT_TRUE(child) << child.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(::getpgid(child->pid()), ::getpgrp());
  child->terminate(std::chrono::seconds(5));
}

TEST(ChildProcess, OutputIsAppendedToTheLogAndTheExitStatusComesBack) {
  auto log = temp_log("log");
  for (const char* word : {"first", "second"}) {
    auto child = ChildProcess::spawn({"/bin/sh", "-c", std::string("echo ") + word + "; echo oops >&2; exit 3"}, log, true);
    ASSERT_TRUE(child) << child.error().message;
    int status = child->wait();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status;
  }
  EXPECT_EQ(read_all(log), "first\noops\nsecond\noops\n");
  fs::remove(log);
}

TEST(ChildProcess, AMissingProgramOrLogFolderIsAnError) {
  auto missing = ChildProcess::spawn({"/nonexistent/program"}, {}, true);
  ASSERT_TRUE(missing);  // exec fails in the child: exit status 127
  int status = missing->wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 127) << status;
  auto no_folder = ChildProcess::spawn({"/bin/true"}, "/nonexistent/folder/log", true);
  ASSERT_FALSE(no_folder);
  EXPECT_NE(no_folder.error().message.find("/nonexistent/folder/log"), std::string::npos) << no_folder.error().message;
  EXPECT_FALSE(ChildProcess::spawn({}, {}, true));
}

TEST(RunCommand, CapturesOutputExitCodeAndStandardInput) {
  auto r = run_command({"/bin/sh", "-c", "cat; echo err >&2; exit 4"}, "from stdin\n");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 4);
  EXPECT_NE(r->output.find("from stdin"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("err"), std::string::npos) << r->output;
}

}  // namespace
}  // namespace ca
