// DirectoryWatch against a real slapd (syncprov): a change to the watched entry is reported within
// milliseconds, changes elsewhere are not, and a directory restart is followed by another report.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/directory_watch.hpp"
#include "store/ldap_connection.hpp"
#include "support/directory_fixture.hpp"

namespace ca::testing {
namespace {

using namespace std::chrono_literals;
using Op = store::LdapModification::Op;

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

TEST(DirectoryWatchTest, AChangeToTheWatchedEntryIsReportedAtOnceAndOthersAreNot) {
  TestDirectory directory;
  const std::string watched = "ou=replica," + directory.suffix();
  const std::string other = "ou=groups," + directory.suffix();
  std::atomic<int> calls{0};
  store::DirectoryWatch watch(directory.endpoint(), watched, store::SearchScope::base, "(objectClass=*)", [&] { ++calls; });
  watch.start();
  // One call after the initial refresh.
  ASSERT_TRUE(wait_until([&] { return calls.load() >= 1; }, 3000ms)) << "no call after the refresh";
  std::this_thread::sleep_for(400ms);
  const int after_refresh = calls.load();

  auto conn = store::LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(conn) << conn.error().message;
  ASSERT_TRUE((*conn)->modify(other, {{Op::replace, "description", {"not watched"}}}));
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(calls.load(), after_refresh) << "a change to another entry was reported";

  for (int i = 0; i < 3; ++i) {
    const int before = calls.load();
    const auto changed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE((*conn)->modify(watched, {{Op::replace, "description", {"change " + std::to_string(i)}}}));
    ASSERT_TRUE(wait_until([&] { return calls.load() > before; }, 2000ms)) << "change " << i << " not reported";
    const auto took = std::chrono::steady_clock::now() - changed_at;
    // Reported at once: well under a poll interval.
    EXPECT_LT(took, 800ms) << "change " << i;
  }
  watch.stop();
}

TEST(DirectoryWatchTest, AfterTheDirectoryRestartsTheWatchResumesAndReportsAgain) {
  TestDirectory directory;
  const std::string watched = "ou=replica," + directory.suffix();
  std::atomic<int> calls{0};
  store::DirectoryWatch watch(directory.endpoint(), watched, store::SearchScope::base, "(objectClass=*)", [&] { ++calls; });
  watch.start();
  ASSERT_TRUE(wait_until([&] { return calls.load() >= 1; }, 3000ms));
  directory.slapd->stop();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(directory.slapd->start(false));
  const int before_change = calls.load();
  auto conn = store::LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(conn) << conn.error().message;
  // The watch re-opens (backoff up to 5 s) and reports at its refresh, then the change.
  ASSERT_TRUE(wait_until([&] { return calls.load() > before_change; }, 8000ms)) << "no report after the restart";
  std::this_thread::sleep_for(400ms);
  const int before = calls.load();
  ASSERT_TRUE((*conn)->modify(watched, {{Op::replace, "description", {"after restart"}}}));
  EXPECT_TRUE(wait_until([&] { return calls.load() > before; }, 2000ms)) << "the change after the restart was not reported";
  watch.stop();
}

}  // namespace
}  // namespace ca::testing
