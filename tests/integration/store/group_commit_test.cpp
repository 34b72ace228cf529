// GroupCommitWriter against a real slapd: units are all-or-nothing, also when the directory is
// killed in the middle of a batch.
#include "store/ldap/group_commit.hpp"

#include <signal.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/directory_fixture.hpp"

namespace ca::store {
namespace {

using testing::TestDirectory;

class GroupCommitTest : public ::testing::Test {
 protected:
  TestDirectory directory;

  std::string dn(const std::string& name) const {
    return fmt::format("cn={},ou=requests,ou=ca,{}", name, directory.suffix());
  }
  // A unit of two plain entries, like an enrollment's request + certificate records.
  WriteOp add(const std::string& name) const {
    WriteOp op;
    op.kind = WriteOp::Kind::add;
    op.dn = dn(name);
    op.attributes = {{"objectClass", {"top", "device"}}, {"cn", {name}}};
    return op;
  }
  bool exists(const std::string& name) {
    if (!reader || reader->stale()) {
      auto opened = LdapConnection::open(directory.endpoint());
      EXPECT_TRUE(opened) << opened.error().message;
      if (!opened) return false;
      reader = std::move(*opened);
    }
    auto found = reader->read(dn(name));
    EXPECT_TRUE(found) << found.error().message;
    return found && found->has_value();
  }
  std::unique_ptr<LdapConnection> reader;
};

TEST_F(GroupCommitTest, TheBatchObserverSeesEveryBatchWithItsSizeAndWriteTime) {
  GroupCommitOptions options;
  options.max_batch = 8;
  options.writers = 2;
  GroupCommitWriter writer(directory.endpoint(), options);
  std::mutex mutex;
  std::vector<BatchReport> reports;
  writer.set_batch_observer([&](const BatchReport& report) {
    std::lock_guard lock(mutex);
    reports.push_back(report);
  });
  std::vector<std::future<Status>> results;
  for (int i = 0; i < 30; ++i) {
    auto promise = std::make_shared<std::promise<Status>>();
    results.push_back(promise->get_future());
    writer.submit(WriteUnit{{add(fmt::format("o{}", i))}, [promise](Status st) { promise->set_value(st); }});
  }
  for (auto& r : results) ASSERT_TRUE(r.get());
  writer.stop();  // every batch reported
  std::lock_guard lock(mutex);
  std::size_t units = 0;
  for (const auto& report : reports) {
    EXPECT_TRUE(report.written);
    EXPECT_GE(report.units, 1u);
    EXPECT_LE(report.units, 8u) << "a batch never exceeds max_batch";
    EXPECT_GT(report.write_time.count(), 0);
    units += report.units;
  }
  EXPECT_EQ(units, 30u);
  EXPECT_EQ(reports.size(), writer.stats().batches);
}

TEST_F(GroupCommitTest, AFailingUnitIsUndoneAndTheRestOfTheBatchLands) {
  ASSERT_TRUE(LdapConnection::open(directory.endpoint()).value()->add(dn("taken"), add("taken").attributes));
  GroupCommitOptions options;
  options.max_batch = 64;
  options.writers = 1;
  GroupCommitWriter writer(directory.endpoint(), options);
  // Queue all units before the writer can pick them up one by one: they share batches.
  std::vector<std::future<Status>> results;
  for (int i = 0; i < 20; ++i) {
    auto promise = std::make_shared<std::promise<Status>>();
    results.push_back(promise->get_future());
    std::vector<WriteOp> ops{add(fmt::format("a{}", i)), add(i == 7 ? "taken" : fmt::format("b{}", i))};
    writer.submit(WriteUnit{std::move(ops), [promise](Status st) { promise->set_value(st); }});
  }
  for (int i = 0; i < 20; ++i) {
    Status st = results[i].get();
    if (i == 7) {
      ASSERT_FALSE(st);
      EXPECT_TRUE(st.error().is(ErrorCode::conflict)) << st.error().message;
      EXPECT_FALSE(exists("a7")) << "the first half of the failed unit was left behind";
    } else {
      EXPECT_TRUE(st) << st.error().message;
      EXPECT_TRUE(exists(fmt::format("a{}", i)));
      EXPECT_TRUE(exists(fmt::format("b{}", i)));
    }
  }
  EXPECT_TRUE(exists("taken"));
  EXPECT_EQ(writer.stats().failed_units, 1u);
  EXPECT_LT(writer.stats().batches, 20u) << "units were not grouped";
}

// durability: group relies on ca-server syncing the data file; if it cannot, no write may be
// reported durable, and what the batch wrote is removed before anything else is written (except
// entries that existed before, which the directory refused).
TEST_F(GroupCommitTest, WithoutItsFileToSyncNoWriteIsReportedDurableAndTheBatchIsCleanedUp) {
  ASSERT_TRUE(LdapConnection::open(directory.endpoint()).value()->add(dn("taken"), add("taken").attributes));
  auto sync_file = directory.dir.path() / "sync-target";
  GroupCommitOptions options;
  options.writers = 1;
  options.sync_file = sync_file.string();
  GroupCommitWriter writer(directory.endpoint(), options);
  Status unsynced = writer.commit({add("x1")});
  ASSERT_FALSE(unsynced) << "a write was reported durable without a sync";
  EXPECT_TRUE(unsynced.error().is(ErrorCode::unavailable)) << unsynced.error().message;
  EXPECT_NE(unsynced.error().message.find("sync-target"), std::string::npos) << unsynced.error().message;
  EXPECT_FALSE(writer.commit({add("x2"), add("taken")}));

  testing::write_file(sync_file, "");  // now it can sync
  Status synced = writer.commit({add("y")});
  EXPECT_TRUE(synced) << synced.error().message;
  EXPECT_TRUE(exists("y"));
  EXPECT_FALSE(exists("x1")) << "an unconfirmed write stayed behind";
  EXPECT_FALSE(exists("x2")) << "an unconfirmed write stayed behind";
  EXPECT_TRUE(exists("taken")) << "the clean-up removed an entry that existed before the batch";
}

TEST_F(GroupCommitTest, FirstBatchAfterADirectoryRestartSucceeds) {
  GroupCommitWriter writer(directory.endpoint(), GroupCommitOptions{});
  ASSERT_TRUE(writer.commit({add("before")}));
  directory.slapd->stop();
  ASSERT_TRUE(directory.slapd->start(false));
  Status after = writer.commit({add("after")});
  EXPECT_TRUE(after) << after.error().message;
  EXPECT_TRUE(exists("after"));
}

TEST_F(GroupCommitTest, DirectoryKilledMidBatchLeavesNoHalfWrittenUnit) {
  GroupCommitOptions options;
  options.max_batch = 32;
  options.writers = 2;
  GroupCommitWriter writer(directory.endpoint(), options);
  constexpr int kUnits = 3000;
  std::vector<std::promise<Status>> promises(kUnits);
  std::vector<std::future<Status>> results;
  for (auto& p : promises) results.push_back(p.get_future());
  std::atomic<int> answered{0};
  std::thread producer([&] {
    for (int i = 0; i < kUnits; ++i)
      writer.submit(WriteUnit{{add(fmt::format("req{}", i)), add(fmt::format("cert{}", i))}, [&, i](Status st) {
                                promises[i].set_value(st);
                                ++answered;
                              }});
  });
  // Kill slapd outright once writing is well under way.
  while (answered < 300) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(::kill(directory.slapd->pid(), SIGKILL), 0);
  producer.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(directory.slapd->start(false));
  // Every writer gets a batch after the restart: orphans are removed before new writes.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(writer.commit({add(fmt::format("later{}", i))}));

  int landed = 0, refused = 0;
  for (int i = 0; i < kUnits; ++i) {
    Status st = results[i].get();
    bool req = exists(fmt::format("req{}", i));
    bool cert = exists(fmt::format("cert{}", i));
    if (st) {
      ++landed;
      EXPECT_TRUE(req && cert) << "unit " << i << " was acknowledged but is not in the directory";
    } else {
      ++refused;
      EXPECT_TRUE(st.error().is(ErrorCode::unavailable)) << st.error().message;
      EXPECT_FALSE(req || cert) << "unit " << i << " failed but left " << (req ? "its request" : "its certificate");
    }
  }
  EXPECT_GT(landed, 0);
  EXPECT_GT(refused, 0) << "the kill did not interrupt any unit; the test proved nothing";
}

TEST_F(GroupCommitTest, AFullQueueRefusesAtOnceInsteadOfGrowing) {
  GroupCommitOptions options;
  options.max_batch = 1;
  options.writers = 1;
  options.max_queue = 2;
  GroupCommitWriter writer(directory.endpoint(), options);
  ASSERT_TRUE(writer.commit({add("warm")}));  // the writer holds an open connection
  // The directory freezes: the writer blocks on its first unit, two more wait, the next is refused.
  ASSERT_EQ(::kill(directory.slapd->pid(), SIGSTOP), 0);
  std::vector<std::future<Status>> waiting;
  auto submit = [&](const std::string& name) {
    auto promise = std::make_shared<std::promise<Status>>();
    waiting.push_back(promise->get_future());
    writer.submit({{add(name)}, [promise](Status st) { promise->set_value(st); }});
  };
  submit("q0");
  // The writer takes q0 off the queue and blocks on the frozen directory.
  for (int i = 0; i < 500 && writer.queued() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(writer.queued(), 0u);
  submit("q1");
  submit("q2");
  submit("q3");
  auto refused = waiting.back().wait_for(std::chrono::seconds(1));
  ::kill(directory.slapd->pid(), SIGCONT);
  ASSERT_EQ(refused, std::future_status::ready) << "the unit beyond the queue limit was not answered at once";
  Status st = waiting.back().get();
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().is(ErrorCode::unavailable)) << st.error().message;
  EXPECT_NE(st.error().message.find("write queue is full"), std::string::npos) << st.error().message;
  for (std::size_t i = 0; i + 1 < waiting.size(); ++i) EXPECT_TRUE(waiting[i].get()) << "unit q" << i;
  EXPECT_TRUE(exists("q0") && exists("q1") && exists("q2"));
  EXPECT_FALSE(exists("q3"));
}

}  // namespace
}  // namespace ca::store
