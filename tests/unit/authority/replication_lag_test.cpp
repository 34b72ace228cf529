// The readiness judgement on replication: how far this directory is behind each peer it could read,
// and the newest CRL the peers serve.
#include <gtest/gtest.h>

#include "authority/replication_lag.hpp"

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
  EXPECT_TRUE(judge_replication_lag(local, peers, kNow, 3000ms, 3000ms));
}

TEST(ReplicationLagTest, ADirectoryBackFromAFreezeIsNotReadyNamingThePeer) {
  std::map<int, system_time> local{{1, kT0 - 20s}, {3, kT0}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 200ms)}};
  auto judged = judge_replication_lag(local, peers, kNow, 10000ms, 3000ms);
  ASSERT_FALSE(judged);
  EXPECT_NE(judged.error().message.find("replica 1"), std::string::npos) << judged.error().message;
  EXPECT_NE(judged.error().message.find("20000 ms behind"), std::string::npos) << judged.error().message;
}

TEST(ReplicationLagTest, APeerNotReadLatelyIsNotJudged) {
  std::map<int, system_time> local{{1, kT0 - 60s}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 10s)}};  // cut off: its last sample is old
  EXPECT_TRUE(judge_replication_lag(local, peers, kNow, 3000ms, 3000ms));
}

TEST(ReplicationLagTest, NoChangeOfAPeerYetIsNotReady) {
  std::map<int, system_time> local{{2, kT0}};
  std::map<int, PeerCsnSample> peers{{1, sample(kT0, 100ms)}};
  EXPECT_FALSE(judge_replication_lag(local, peers, kNow, 3000ms, 3000ms));
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
