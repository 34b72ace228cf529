// contextCSN times and their cache: parsed exactly, refreshed on the monitor's thread, and a
// directory that does not answer never blocks a reader of the cache.
#include "authority/cluster/context_csn_monitor.hpp"

#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

TEST(ContextCsnMonitorTest, CsnTimeIsUtcWithMicroseconds) {
  auto t = csn_time("20261123163001.123456Z#000000#001#000000");
  ASSERT_TRUE(t) << t.error().message;
  // 2026-11-23T16:30:01Z
  EXPECT_EQ(*t, Clock::time_point(std::chrono::seconds(1795451401)) + std::chrono::microseconds(123456));
  EXPECT_TRUE(csn_time("19700101000000.000000Z"));
  for (const char* bad : {"", "20261123163001Z#0#1#0", "2026112316300.123456Z#000000#001#000000",
                          "20261323163001.123456Z#000000#001#000000", "20261123163001.12345xZ#000000#001#000000",
                          "20261123163001.123456Z000000#001#000000"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(csn_time(bad));
  }
}

TEST(ContextCsnMonitorTest, SnapshotHoldsTheLastSuccessfulRead) {
  std::atomic<int> reads{0};
  bool fail_next = false;
  ContextCsnMonitor monitor(
      [&]() -> Result<std::map<int, std::string>> {
        ++reads;
        if (fail_next) return fail(Error::unavailable("directory down"));
        return std::map<int, std::string>{{1, "20261123163001.000000Z#000000#001#000000"},
                                          {2, "not a csn"},
                                          {3, "20261123163101.500000Z#000002#003#000000"}};
      },
      1h);
  EXPECT_FALSE(monitor.snapshot().read_at) << "nothing read yet";
  monitor.refresh();
  auto first = monitor.snapshot();
  ASSERT_TRUE(first.read_at);
  ASSERT_EQ(first.csn_times.size(), 2u) << "an unreadable CSN is left out";
  EXPECT_EQ(first.csn_times.at(3) - first.csn_times.at(1), 60500ms);

  fail_next = true;
  monitor.refresh();
  auto second = monitor.snapshot();
  EXPECT_EQ(second.csn_times, first.csn_times) << "a failed read keeps the figures";
  EXPECT_EQ(second.read_at, first.read_at) << "and says how old they are";
  EXPECT_EQ(reads, 2);
}

TEST(ContextCsnMonitorTest, FrozenDirectoryNeverBlocksTheSnapshot) {
  std::promise<void> release;
  auto released = release.get_future().share();
  std::atomic<int> reads{0};
  ContextCsnMonitor monitor(
      [&]() -> Result<std::map<int, std::string>> {
        if (++reads > 1) released.wait();  // the second read hangs like a frozen slapd
        return std::map<int, std::string>{{1, "20261123163001.000000Z#000000#001#000000"}};
      },
      10ms);
  monitor.start();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reads < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  ASSERT_GE(reads, 2);
  const auto began = std::chrono::steady_clock::now();
  auto snapshot = monitor.snapshot();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 100ms);
  EXPECT_EQ(snapshot.csn_times.size(), 1u);
  release.set_value();
  monitor.stop();
}

}  // namespace
}  // namespace ca::authority
