// DirectoryWatch against a real slapd (syncprov): a change to the watched entry is reported within
// milliseconds, changes elsewhere are not, and a directory restart is followed by another report.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/ldap/directory_watch.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/ldap_connection.hpp"
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
  store::DirectoryWatch watch(directory.endpoint(), watched, store::SearchScope::base, "(objectClass=*)",
                              [&] { ++calls; });
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
  store::DirectoryWatch watch(directory.endpoint(), watched, store::SearchScope::base, "(objectClass=*)",
                              [&] { ++calls; });
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
  EXPECT_TRUE(wait_until([&] { return calls.load() > before; }, 2000ms))
      << "the change after the restart was not reported";
  watch.stop();
}

// What the CRL master's revocation feed relies on: the refresh phase hands over every revoked record
// (the index load), then each record that becomes revoked comes with its attributes, and one taken
// off hold (it leaves the filter) comes with its DN only, in the order the directory applied them.
TEST(DirectoryWatchTest, TheRevocationFeedSeesTheRefreshThenRevocationsAndRecordsLeavingTheFilter) {
  TestDirectory directory;
  const std::string certificates = "ou=certificateRepository,ou=ca," + directory.suffix();
  auto conn = store::LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(conn) << conn.error().message;
  auto add_record = [&](const std::string& serial, bool revoked) {
    // slapd checks userCertificate's syntax: one real certificate for all records.
    static const std::string der = [] {
      TempDir tmp;
      shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t -keyout " +
            (tmp / "k").string() + " -outform DER -out " + (tmp / "c.der").string());
      return read_file(tmp / "c.der");
    }();
    std::vector<store::LdapAttribute> attrs{{"objectClass", {"caCertificateRecord"}},
                                            {"cn", {serial}},
                                            {"caSerialNumber", {serial}},
                                            {"caCertStatus", {revoked ? "REVOKED" : "VALID"}},
                                            {"userCertificate;binary", {der}}};
    if (revoked) {
      attrs.push_back({"caRevokedOn", {"20260101000000Z"}});
      attrs.push_back({"caRevocationReason", {"1"}});
    }
    return (*conn)->add("cn=" + serial + "," + certificates, attrs);
  };
  const std::string before = std::string(39, '0') + "1";
  const std::string later = std::string(39, '0') + "2";
  ASSERT_TRUE(add_record(before, true));
  ASSERT_TRUE(add_record(later, false));

  using Event = store::DirectoryWatch::Event;
  std::mutex mutex;
  std::vector<std::string> events;  // "begin", "entry <serial>", "end", "changed <serial> <revoked>"
  store::DirectoryWatch watch(directory.endpoint(), certificates, store::SearchScope::one,
                              store::LdapCaStore::revoked_filter(), [] {});
  watch.set_entry_handler(store::LdapCaStore::revocation_attributes(), [&](Event event, const store::LdapEntry* entry) {
    std::optional<store::RevocationChange> change;
    if (entry) change = store::LdapCaStore::revocation_change_from(*entry);
    std::lock_guard lock(mutex);
    switch (event) {
      case Event::refresh_begin:
        events.push_back("begin");
        break;
      case Event::refresh_entry:
        events.push_back("entry " + (change ? change->serial_hex : "?"));
        break;
      case Event::refresh_end:
        events.push_back("end");
        break;
      case Event::changed:
        events.push_back("changed " + (change ? change->serial_hex : "?") +
                         (change && change->revoked ? " revoked" : " valid"));
        break;
    }
  });
  auto seen = [&](const std::string& what) {
    std::lock_guard lock(mutex);
    return std::find(events.begin(), events.end(), what) != events.end();
  };
  watch.start();
  ASSERT_TRUE(wait_until([&] { return seen("end"); }, 3000ms)) << "the refresh phase did not end";
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0], "begin");
    EXPECT_EQ(events[1], "entry 1") << "the refresh must hand over the revoked record (and only it)";
  }
  ASSERT_TRUE((*conn)->modify("cn=" + later + "," + certificates, {{Op::replace, "caCertStatus", {"REVOKED"}},
                                                                   {Op::replace, "caRevokedOn", {"20260102000000Z"}},
                                                                   {Op::replace, "caRevocationReason", {"6"}}}));
  ASSERT_TRUE(wait_until([&] { return seen("changed 2 revoked"); }, 2000ms)) << "a revocation was not handed over";
  // Taken off hold: the record leaves the filter.
  ASSERT_TRUE((*conn)->modify("cn=" + later + "," + certificates, {{Op::replace, "caCertStatus", {"VALID"}},
                                                                   {Op::replace, "caRevokedOn", {}},
                                                                   {Op::replace, "caRevocationReason", {}}}));
  EXPECT_TRUE(wait_until([&] { return seen("changed 2 valid"); }, 2000ms))
      << "a record leaving the filter was not handed over";
  watch.stop();
}

}  // namespace
}  // namespace ca::testing
