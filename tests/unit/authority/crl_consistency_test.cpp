// What /readyz says about the CRLs served here against the cluster's, on a hand-driven clock.
#include "authority/revocation/crl_consistency.hpp"

#include <gtest/gtest.h>

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using Clock = CrlConsistency::Clock;

const Clock::time_point kStart{std::chrono::hours(1000)};

TEST(CrlConsistency, BehindAPeerTurnsNotReadyOnlyPastTheBoundAndCountsOneEpisode) {
  CrlConsistency c({.behind_bound = 3s, .advisory_window = 60s});
  EXPECT_TRUE(c.judge_served(10, 10, kStart));
  EXPECT_TRUE(c.judge_served(10, 12, kStart)) << "a push takes a moment";
  EXPECT_TRUE(c.judge_served(10, 12, kStart + 3s));
  auto behind = c.judge_served(10, 12, kStart + 3001ms);
  ASSERT_FALSE(behind);
  EXPECT_TRUE(behind.error().is(ErrorCode::unavailable));
  EXPECT_NE(behind.error().message.find("serving CRL 10 but CRL 12"), std::string::npos) << behind.error().message;
  EXPECT_FALSE(c.judge_served(10, 12, kStart + 5s));
  EXPECT_EQ(c.behind_episodes(), 1u) << "one episode, however many checks it lasted";
  EXPECT_TRUE(c.judge_served(12, 12, kStart + 6s));
  EXPECT_TRUE(c.judge_served(12, 13, kStart + 7s)) << "a new episode starts its own bound";
  EXPECT_FALSE(c.judge_served(12, 13, kStart + 11s));
  EXPECT_EQ(c.behind_episodes(), 2u);
}

TEST(CrlConsistency, EpochAnomaliesAreReportedForTheWindowAfterTheyWereLastSeen) {
  CrlConsistency c({.behind_bound = 3s, .advisory_window = 60s});
  EXPECT_TRUE(c.judge_epochs(0, std::nullopt, kStart));
  auto regression = c.judge_epochs(1, std::nullopt, kStart + 1s);
  ASSERT_FALSE(regression);
  EXPECT_NE(regression.error().message.find("lower epoch"), std::string::npos) << regression.error().message;
  EXPECT_FALSE(c.judge_epochs(1, std::nullopt, kStart + 60s));
  EXPECT_TRUE(c.judge_epochs(1, std::nullopt, kStart + 61s)) << "the same count is not a new regression";
  auto two_epochs = c.judge_epochs(1, kStart + 70s, kStart + 71s);
  ASSERT_FALSE(two_epochs);
  EXPECT_NE(two_epochs.error().message.find("two epochs"), std::string::npos) << two_epochs.error().message;
  EXPECT_TRUE(c.judge_epochs(1, kStart + 70s, kStart + 131s));
}

}  // namespace
}  // namespace ca::authority
