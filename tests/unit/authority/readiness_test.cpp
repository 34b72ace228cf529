// The readiness monitor: checks run on their own thread; a failing check, a stuck check (the
// report goes stale) and draining each make the instance not ready, and it is ready again once
// the checks pass.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "authority/instance/readiness.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;

bool wait_until(const ReadinessMonitor& m, bool ready, std::chrono::milliseconds limit = 3000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (m.report().ready == ready) return true;
    std::this_thread::sleep_for(10ms);
  }
  return m.report().ready == ready;
}

TEST(ReadinessMonitor, NotReadyBeforeTheFirstRunThenReadyWhenEveryCheckPasses) {
  ReadinessMonitor m({{"a", [] { return ok(); }}, {"b", [] { return ok(); }}}, {50ms, 1000ms});
  EXPECT_FALSE(m.report().ready);
  m.start();
  ASSERT_TRUE(wait_until(m, true));
  auto r = m.report();
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(r.checks[0].name, "a");
  EXPECT_TRUE(r.checks[1].ok);
}

TEST(ReadinessMonitor, AFailingCheckMakesItNotReadyWithItsReasonAndItRecovers) {
  std::atomic<bool> directory_up{true};
  ReadinessMonitor m({{"directory", [&]() -> Status {
                         if (directory_up) return ok();
                         return fail(Error::unavailable("the directory does not answer"));
                       }}},
                     {20ms, 1000ms});
  m.start();
  ASSERT_TRUE(wait_until(m, true));
  directory_up = false;
  ASSERT_TRUE(wait_until(m, false));
  auto r = m.report();
  ASSERT_FALSE(r.checks.empty());
  EXPECT_EQ(r.checks[0].detail, "the directory does not answer");
  directory_up = true;
  EXPECT_TRUE(wait_until(m, true));
}

TEST(ReadinessMonitor, AStuckCheckMakesTheReportStaleAndNotReady) {
  std::atomic<bool> stuck{false};
  ReadinessMonitor m({{"directory", [&]() -> Status {
                         while (stuck) std::this_thread::sleep_for(5ms);  // a frozen directory
                         return ok();
                       }}},
                     {20ms, 200ms});
  m.start();
  ASSERT_TRUE(wait_until(m, true));
  stuck = true;
  ASSERT_TRUE(wait_until(m, false, 2000ms));
  auto r = m.report();
  EXPECT_NE(r.checks.back().detail.find("stuck"), std::string::npos) << r.checks.back().detail;
  stuck = false;
  EXPECT_TRUE(wait_until(m, true));
}

TEST(ReadinessMonitor, DrainingIsNeverReady) {
  ReadinessMonitor m({{"a", [] { return ok(); }}}, {20ms, 1000ms});
  m.run_once();
  EXPECT_TRUE(m.report().ready);
  m.set_draining();
  auto r = m.report();
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.checks.back().name, "shutdown");
}

}  // namespace
}  // namespace ca::authority
