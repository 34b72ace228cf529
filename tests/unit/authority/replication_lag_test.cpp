// The readiness judgement on replication: how long this directory has lacked each peer's changes,
// and the newest CRL the peers serve.
#include <gtest/gtest.h>

#include "authority/cluster/replication_lag.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using system_time = std::chrono::system_clock::time_point;

const system_time kT0 = system_time{} + std::chrono::hours(24 * 365 * 56);
const auto kNow = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);

PeerCsnSample sample(system_time own, std::chrono::milliseconds read_ago, uint64_t crl = 0, system_time serve_from = {}) {
  return PeerCsnSample{own, kNow - read_ago, "ldaps://peer:3890/", crl, serve_from};
}

TEST(ReplicationLagTest, CaughtUpOrSlightlyBehindIsReady) {
  std::map<int, system_time> local{{1, kT0}, {2, kT0 - 500ms}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0 + 200ms, 100ms)}, {2, sample(kT0, 100ms)}};
  EXPECT_TRUE(ReplicationLagJudge(3000ms, 3000ms).judge(local, peers, kNow));
}

// This instance just started (no history): the CSN difference is all it knows, and 20 s of a
// peer's changes missing here is a lag.
TEST(ReplicationLagTest, ADirectoryBackFromAFreezeIsNotReadyNamingThePeer) {
  std::map<int, system_time> local{{1, kT0 - 20s}, {3, kT0}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 200ms)}};
  auto judged = ReplicationLagJudge(10000ms, 3000ms).judge(local, peers, kNow);
  ASSERT_FALSE(judged);
  EXPECT_NE(judged.error().message.find("replica 1"), std::string::npos) << judged.error().message;
  EXPECT_NE(judged.error().message.find("20000 ms behind"), std::string::npos) << judged.error().message;
}

TEST(ReplicationLagTest, APeerNotReadLatelyIsNotJudged) {
  std::map<int, system_time> local{{1, kT0 - 60s}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 10s)}};  // cut off: its last sample is old
  EXPECT_TRUE(ReplicationLagJudge(3000ms, 3000ms).judge(local, peers, kNow));
}

// The monitor's side, by hand: the reads of one peer, each carrying the history on as
// PeerCsnMonitor does.
class PeerReads {
 public:
  static constexpr auto kBreakAfter = 5000ms;
  PeerCsnSample read(system_time own, std::chrono::milliseconds at) {
    PeerCsnSample next{own, kNow + at, "ldaps://peer:3890/", 0, {}};
    continue_history(last_ ? &*last_ : nullptr, next, kBreakAfter);
    last_ = next;
    return next;
  }

 private:
  std::optional<PeerCsnSample> last_;
};

std::chrono::steady_clock::time_point at(std::chrono::milliseconds t) { return kNow + t; }

// A clone just added: its first change is in its own directory before it reaches this one. Not a
// lag, until it stays missing for longer than the bound.
TEST(ReplicationLagTest, NoChangeOfANewPeerYetIsALagOnlyAfterTheBound) {
  ReplicationLagJudge judge(3000ms, 3000ms);
  PeerReads peer;
  std::map<int, system_time> local{{2, kT0}};
  EXPECT_TRUE(judge.judge(local, {{1, peer.read(kT0, 0ms)}}, at(0ms)));
  EXPECT_TRUE(judge.judge(local, {{1, peer.read(kT0 + 2s, 2000ms)}}, at(2000ms)));
  auto judged = judge.judge(local, {{1, peer.read(kT0 + 4s, 4000ms)}}, at(4000ms));
  ASSERT_FALSE(judged);
  EXPECT_NE(judged.error().message.find("no change of replica 1 yet"), std::string::npos) << judged.error().message;
  // Once it arrives, ready.
  EXPECT_TRUE(judge.judge({{1, kT0 + 4s}, {2, kT0}}, {{1, peer.read(kT0 + 4s, 4100ms)}}, at(4100ms)));
}

// A peer stopped for 20 s writes its first change on restart: its CSN is 20 s past the one this
// directory holds for it, but the change is milliseconds old and arrives milliseconds later.
TEST(ReplicationLagTest, APeerRestartingAfterADowntimeLeavesItsPeersReady) {
  ReplicationLagJudge judge(3000ms, 3000ms);
  PeerReads peer;
  // Caught up with the peer before it stops.
  auto last = peer.read(kT0, 0ms);
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, last}}, at(100ms)));
  // Stopped: its last sample goes stale and is not judged.
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, last}}, at(10s)));
  // Back 20 s later: the first change is seen in its directory before it replicated here.
  auto back = peer.read(kT0 + 20s, 20000ms);
  for (auto t : {20000ms, 20200ms, 20500ms, 21000ms}) {
    auto judged = judge.judge({{1, kT0}}, {{1, back}}, at(t));
    EXPECT_TRUE(judged) << "at " << t.count() << " ms: " << judged.error().message;
  }
  EXPECT_TRUE(judge.judge({{1, kT0 + 20s}}, {{1, peer.read(kT0 + 20s, 21000ms)}}, at(21100ms)));
}

// The peer's last change before it stopped was seen in its directory but died with it before it
// replicated: it arrives with the peer's first change after the restart. Not 20 s of lag either.
TEST(ReplicationLagTest, AChangeThatDiedWithAStoppedPeerIsNotCountedAsLag) {
  ReplicationLagJudge judge(3000ms, 3000ms);
  PeerReads peer;
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, peer.read(kT0, 0ms)}}, at(100ms)));
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, peer.read(kT0 + 500ms, 1000ms)}}, at(1000ms)));  // its last heartbeat
  auto back = peer.read(kT0 + 21s, 21000ms);
  for (auto t : {21000ms, 21500ms}) {
    auto judged = judge.judge({{1, kT0}}, {{1, back}}, at(t));
    EXPECT_TRUE(judged) << "at " << t.count() << " ms: " << judged.error().message;
  }
  EXPECT_TRUE(judge.judge({{1, kT0 + 21s}}, {{1, back}}, at(21600ms)));
}

// Once caught up, a directory that stops receiving the peer's changes (replication broken) is
// behind by how long the oldest missing change has been seen, and fails once that passes the
// bound.
TEST(ReplicationLagTest, ADirectoryThatStopsReceivingChangesTurnsNotReadyAfterTheBound) {
  ReplicationLagJudge judge(3000ms, 3000ms);
  PeerReads peer;
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, peer.read(kT0, 0ms)}}, at(0ms)));
  Status last = ok();
  for (int second = 1; second <= 5; ++second) {
    // The peer keeps writing (heartbeats) and is read every second; nothing arrives here.
    const auto t = std::chrono::milliseconds(second * 1000);
    last = judge.judge({{1, kT0}}, {{1, peer.read(kT0 + std::chrono::seconds(second), t)}}, at(t));
    if (second <= 3) {
      EXPECT_TRUE(last) << "after " << second << " s: " << last.error().message;
    }
  }
  ASSERT_FALSE(last);
  EXPECT_NE(last.error().message.find("4000 ms behind replica 1"), std::string::npos) << last.error().message;
  // Caught up again: ready.
  EXPECT_TRUE(judge.judge({{1, kT0 + 5s}}, {{1, peer.read(kT0 + 5s, 5100ms)}}, at(5100ms)));
}

// This instance's own directory frozen for 20 s: the readiness check cannot read it meanwhile (and
// judges nothing), but the peers are still read. After the thaw it lacks 20 s of changes, first
// seen 20 s ago: not ready until they have arrived.
TEST(ReplicationLagTest, ADirectoryBackFromItsOwnFreezeIsNotReadyUntilCaughtUp) {
  ReplicationLagJudge judge(3000ms, 3000ms);
  PeerReads peer;
  ASSERT_TRUE(judge.judge({{1, kT0}}, {{1, peer.read(kT0, 0ms)}}, at(0ms)));
  PeerCsnSample latest;
  for (int second = 1; second <= 20; ++second)
    latest = peer.read(kT0 + std::chrono::seconds(second), std::chrono::milliseconds(second * 1000));
  auto thawed = judge.judge({{1, kT0}}, {{1, latest}}, at(20100ms));
  ASSERT_FALSE(thawed);
  EXPECT_NE(thawed.error().message.find("behind replica 1"), std::string::npos) << thawed.error().message;
  EXPECT_TRUE(judge.judge({{1, kT0 + 20s}}, {{1, latest}}, at(20300ms)));
}

TEST(ReplicationLagTest, TheNewestPeerCrlCountsOnlyOnceServedAndFresh) {
  const auto wall = kT0;
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 100ms, 7, wall - 1s)},
                                     {2, sample(kT0, 100ms, 9, wall + 1s)},   // not served before 1 s from now
                                     {3, sample(kT0, 10s, 11, wall - 5s)}};   // not read lately
  EXPECT_EQ(newest_peer_crl(peers, kNow, wall, 3000ms), 7u);
  EXPECT_EQ(newest_peer_crl({}, kNow, wall, 3000ms), 0u);
}

}  // namespace
}  // namespace ca::authority
