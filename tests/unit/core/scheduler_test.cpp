#include "core/scheduler.hpp"

#include <atomic>
#include <future>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ca {
namespace {

using namespace std::chrono_literals;

// Time moved by hand: run_due() is what the thread calls, here called by the test.
struct ManualTime {
  Scheduler::Clock::time_point now{};
  Scheduler::Now clock() {
    return [this] { return now; };
  }
};

TEST(SchedulerTest, EachJobRunsOnItsOwnCadenceAsTimeIsMovedByHand) {
  ManualTime time;
  Scheduler scheduler("test", time.clock());
  std::vector<std::string> ran;
  scheduler.add({"fast", 2s, 0s, [&] { ran.push_back("fast"); }});
  scheduler.add({"slow", 30s, 30s, [&] { ran.push_back("slow"); }});
  EXPECT_EQ(scheduler.job_names(), (std::vector<std::string>{"fast", "slow"}));

  EXPECT_EQ(scheduler.run_due(), time.now + 2s);  // fast ran at once; it is next, in 2 s
  EXPECT_EQ(ran, (std::vector<std::string>{"fast"}));
  time.now += 1s;
  EXPECT_EQ(scheduler.run_due(), time.now + 1s);  // nothing due yet
  EXPECT_EQ(ran.size(), 1u);
  time.now += 29s;  // 30 s in: both are due, in the order they were added
  scheduler.run_due();
  EXPECT_EQ(ran, (std::vector<std::string>{"fast", "fast", "slow"}));
  // The cadence counts from the end of a run: one late run does not make up for missed ones.
  time.now += 100s;
  scheduler.run_due();
  EXPECT_EQ(ran, (std::vector<std::string>{"fast", "fast", "slow", "fast", "slow"}));
}

TEST(SchedulerTest, WithoutJobsNothingIsEverDue) {
  ManualTime time;
  Scheduler scheduler("test", time.clock());
  EXPECT_EQ(scheduler.run_due(), Scheduler::Clock::time_point::max());
}

TEST(SchedulerTest, AJobMayAddAnotherWhileItRuns) {
  ManualTime time;
  Scheduler scheduler("test", time.clock());
  int added_runs = 0;
  bool added = false;
  scheduler.add({"adder", 10s, 0s, [&] {
                   if (added) return;
                   added = true;
                   scheduler.add({"added", 5s, 0s, [&] { ++added_runs; }});
                 }});
  scheduler.run_due();  // the added job is due at once and runs in the same pass
  EXPECT_EQ(added_runs, 1);
  time.now += 5s;
  scheduler.run_due();
  EXPECT_EQ(added_runs, 2);
}

// The production driver: a named thread on the real clock, stopped promptly even when the next
// job is an hour away.
TEST(SchedulerTest, TheThreadRunsDueJobsAndStopsWithoutWaitingForTheNext) {
  Scheduler scheduler("upkeep-test");
  std::promise<void> first_run;
  std::atomic<int> runs{0};
  scheduler.add({"once now, then hourly", std::chrono::hours(1), 0s, [&] {
                   if (runs++ == 0) first_run.set_value();
                 }});
  scheduler.start();
  ASSERT_EQ(first_run.get_future().wait_for(10s), std::future_status::ready);
  const auto asked = std::chrono::steady_clock::now();
  scheduler.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);
  EXPECT_EQ(runs.load(), 1);
  scheduler.stop();  // twice is harmless
}

TEST(SchedulerTest, AJobAddedWhileTheThreadSleepsIsPickedUp) {
  Scheduler scheduler("upkeep-test");
  scheduler.add({"hourly", std::chrono::hours(1), std::chrono::hours(1), [] {}});
  scheduler.start();
  std::promise<void> ran;
  scheduler.add({"now", std::chrono::hours(1), 0s, [&] { ran.set_value(); }});
  EXPECT_EQ(ran.get_future().wait_for(10s), std::future_status::ready);
  scheduler.stop();
}

}  // namespace
}  // namespace ca
