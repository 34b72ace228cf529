// The audit log's checkpoints with the in-memory store: the directory never lets the highest
// checkpoint go down, the publisher never makes the log wait and catches up after an outage, and
// the comparison names the first missing record of a cut file.
#include "authority/audit/audit_checkpoints.hpp"

#include <thread>

#include <gtest/gtest.h>

#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using store::AuditCheckpoint;

AuditCheckpoint checkpoint(uint64_t seq, std::string hash = {}) {
  return {seq, hash.empty() ? std::string(64, static_cast<char>('a' + seq % 6)) : hash,
          std::chrono::system_clock::time_point{} + std::chrono::seconds(seq)};
}

TEST(AuditCheckpointStore, TheHighestCheckpointNeverGoesDownAndASeqKeepsItsHash) {
  testing::FakeCaStore store;
  ASSERT_TRUE(store.record_audit_checkpoint("ca1", checkpoint(10)));
  ASSERT_TRUE(store.record_audit_checkpoint("ca1", checkpoint(20)));
  EXPECT_TRUE(store.record_audit_checkpoint("ca1", checkpoint(20)));  // a retry of the same one
  auto lower = store.record_audit_checkpoint("ca1", checkpoint(15));
  ASSERT_FALSE(lower);
  EXPECT_TRUE(lower.error().is(ErrorCode::conflict));
  EXPECT_FALSE(store.record_audit_checkpoint("ca1", checkpoint(20, std::string(64, 'f'))));
  auto trail = store.audit_trail("ca1");
  ASSERT_TRUE(trail);
  ASSERT_NE(trail->highest(), nullptr);
  EXPECT_EQ(trail->highest()->seq, 20u);
  EXPECT_TRUE(store.audit_trail("ca2")->checkpoints.empty());
}

TEST(AuditCheckpointPublisher, WritesInOrderAndCatchesUpAfterTheDirectoryComesBack) {
  testing::FakeCaStore store;
  store.set_unavailable(true);
  AuditCheckpointPublisher publisher(store, "ca1", {std::chrono::milliseconds(20)});
  const auto before = std::chrono::steady_clock::now();
  publisher.checkpoint_signed(checkpoint(5));
  publisher.checkpoint_signed(checkpoint(9));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);  // handing over never waits
  EXPECT_FALSE(publisher.drain(100ms));
  EXPECT_EQ(publisher.waiting(), 2u);
  store.set_unavailable(false);
  ASSERT_TRUE(publisher.drain(5s));
  auto trail = store.audit_trail("ca1");
  ASSERT_TRUE(trail);
  ASSERT_EQ(trail->checkpoints.size(), 2u);
  EXPECT_EQ(trail->checkpoints[0].seq, 5u);
  EXPECT_EQ(trail->highest()->seq, 9u);
}

TEST(AuditCheckpointPublisher, ARefusedCheckpointIsDroppedNotRetriedForever) {
  testing::FakeCaStore store;
  ASSERT_TRUE(store.record_audit_checkpoint("ca1", checkpoint(50)));
  AuditCheckpointPublisher publisher(store, "ca1", {std::chrono::milliseconds(20)});
  publisher.checkpoint_signed(checkpoint(12));  // below the highest: refused
  publisher.checkpoint_signed(checkpoint(60));
  ASSERT_TRUE(publisher.drain(5s));
  EXPECT_EQ(store.audit_trail("ca1")->highest()->seq, 60u);
}

store::AuditTrail trail_of(std::vector<AuditCheckpoint> checkpoints) {
  store::AuditTrail trail;
  trail.checkpoints = std::move(checkpoints);
  return trail;
}

TEST(CompareAuditTrail, AFileHoldingEveryCheckpointMatches) {
  const auto trail = trail_of({checkpoint(10), checkpoint(20)});
  const auto c = compare_audit_trail(25, 25, {{10, checkpoint(10).hash}, {20, checkpoint(20).hash}}, trail);
  EXPECT_TRUE(c.matches());
  EXPECT_EQ(c.checkpoints_matched, 2u);
  EXPECT_EQ(c.signed_beyond_checkpoints, 25u);  // the directory is behind: not a finding
}

TEST(CompareAuditTrail, ATruncatedOrEmptiedFileNamesItsFirstMissingRecord) {
  const auto trail = trail_of({checkpoint(10), checkpoint(20)});
  const auto truncated = compare_audit_trail(11, 10, {{10, checkpoint(10).hash}}, trail);
  ASSERT_EQ(truncated.findings.size(), 1u);
  EXPECT_EQ(truncated.findings[0].kind, AuditTrailFinding::Kind::missing_tail);
  EXPECT_EQ(truncated.findings[0].first_missing_seq, 12u);
  EXPECT_EQ(truncated.findings[0].expected.seq, 20u);
  const auto emptied = compare_audit_trail(0, 0, {}, trail);
  ASSERT_EQ(emptied.findings.size(), 1u);
  EXPECT_EQ(emptied.findings[0].first_missing_seq, 1u);
  EXPECT_NE(emptied.findings[0].text.find("no records"), std::string::npos) << emptied.findings[0].text;
}

TEST(CompareAuditTrail, AContinuedCutIsFoundAtTheFirstCheckpointThatDiffers) {
  const auto trail = trail_of({checkpoint(10), checkpoint(20), checkpoint(30)});
  const auto c = compare_audit_trail(40, 40, {{10, checkpoint(10).hash}, {20, std::string(64, '0')},
                                              {30, std::string(64, '1')}}, trail);
  ASSERT_EQ(c.findings.size(), 1u);
  EXPECT_EQ(c.findings[0].kind, AuditTrailFinding::Kind::diverged);
  EXPECT_EQ(c.findings[0].first_missing_seq, 11u);
  EXPECT_EQ(c.findings[0].expected.seq, 20u);
}

TEST(CompareAuditTrail, ARecordedCutIsAlwaysReported) {
  auto trail = trail_of({checkpoint(100)});
  trail.cuts.push_back({51, checkpoint(60), std::chrono::system_clock::now()});
  const auto c = compare_audit_trail(120, 120, {{100, checkpoint(100).hash}}, trail);
  ASSERT_EQ(c.findings.size(), 1u);
  EXPECT_EQ(c.findings[0].kind, AuditTrailFinding::Kind::recorded_cut);
  EXPECT_EQ(c.findings[0].first_missing_seq, 51u);
}

}  // namespace
}  // namespace ca::authority
