#include "authority/cluster/range_allocator.hpp"

#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using store::NumberRange;
using store::RangeKind;

TEST(RangeAllocatorTest, ClaimsOnFirstUseAndHandsOutConsecutiveCounters) {
  testing::FakeCaStore store;
  RangeAllocator a(store, RangeKind::serial, 1, "t", 10, 3);
  ASSERT_TRUE(a.restore({}));
  for (uint64_t expected = 1; expected <= 5; ++expected) {
    auto v = a.next();
    ASSERT_TRUE(v) << v.error().message;
    EXPECT_EQ(*v, expected);
  }
  EXPECT_EQ(a.state().current, (NumberRange{1, 10}));
}

TEST(RangeAllocatorTest, ClaimsTheStandbyAtTheLowWaterMarkAndSwitchesWithoutWaiting) {
  testing::FakeCaStore store;
  RangeAllocator a(store, RangeKind::serial, 1, "t", 10, 3);
  ASSERT_TRUE(a.restore({}));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(a.next());  // 2 left in current: below the mark
  a.wait_idle();
  EXPECT_EQ(a.state().standby, (NumberRange{11, 20}));
  EXPECT_EQ(store.claims(), 2);
  ASSERT_TRUE(a.next());
  ASSERT_TRUE(a.next());
  auto first_of_standby = a.next();
  ASSERT_TRUE(first_of_standby);
  EXPECT_EQ(*first_of_standby, 11u);
  EXPECT_EQ(a.state().current, (NumberRange{11, 20}));
}

TEST(RangeAllocatorTest, NeverTakesARangeAtOrBelowOneItUsedWhenTheSharedCounterGoesBackwards) {
  testing::FakeCaStore store;
  RangeAllocator a(store, RangeKind::serial, 1, "t", 10, 1);
  ASSERT_TRUE(a.restore({}));
  std::set<uint64_t> seen;
  for (int i = 0; i < 10; ++i) seen.insert(*a.next());
  a.wait_idle();
  // Replication overwrote the shared counter with an older value.
  store.set_counter(RangeKind::serial, 1);
  for (int i = 0; i < 30; ++i) {
    auto v = a.next();
    ASSERT_TRUE(v);
    EXPECT_TRUE(seen.insert(*v).second) << "counter " << *v << " handed out twice";
    a.wait_idle();
  }
}

TEST(RangeAllocatorTest, RestoreSkipsNumbersWrittenAfterTheCheckpoint) {
  testing::FakeCaStore store;
  // The directory holds certificates with counters 1..7 of replica 3, but the checkpoint says 4.
  for (uint64_t c = 1; c <= 7; ++c) {
    store::CertificateRecord cert;
    cert.serial_hex = fmt::format("{:x}", store::compose_number(c, 3));
    store::RequestRecord req;
    req.id_hex = cert.serial_hex;
    store.commit_enrollment(req, cert, [](Status st) { ASSERT_TRUE(st); });
  }
  RangeAllocator a(store, RangeKind::serial, 3, "t", 100, 10);
  RangeState saved;
  saved.current = NumberRange{1, 100};
  saved.next = 4;
  saved.high_water = 100;
  ASSERT_TRUE(a.restore(saved));
  EXPECT_EQ(*a.next(), 8u);
}

TEST(RangeAllocatorTest, RestoreMovesToTheStandbyWhenNumbersFromItWereUsed) {
  testing::FakeCaStore store;
  store::CertificateRecord cert;
  cert.serial_hex = fmt::format("{:x}", store::compose_number(205, 1));
  store.commit_enrollment(store::RequestRecord{.id_hex = "1"}, cert, [](Status) {});
  RangeAllocator a(store, RangeKind::serial, 1, "t", 100, 10);
  RangeState saved;
  saved.current = NumberRange{1, 100};
  saved.standby = NumberRange{201, 300};
  saved.next = 101;  // current exhausted, crash before the switch was persisted
  ASSERT_TRUE(a.restore(saved));
  EXPECT_EQ(a.state().current, (NumberRange{201, 300}));
  EXPECT_EQ(*a.next(), 206u);
}

TEST(RangeAllocatorTest, ConcurrentCallersGetDistinctNumbers) {
  testing::FakeCaStore store;
  RangeAllocator a(store, RangeKind::serial, 2, "t", 7, 2);  // tiny ranges: many switches
  ASSERT_TRUE(a.restore({}));
  std::mutex m;
  std::set<uint64_t> numbers;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        auto v = a.next_number();
        ASSERT_TRUE(v);
        std::lock_guard l(m);
        EXPECT_TRUE(numbers.insert(*v).second);
        EXPECT_EQ(store::replica_of(*v), 2);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(numbers.size(), 2000u);
}

TEST(RangeAllocatorTest, DirectoryDownWithNoRangeLeftIsUnavailable) {
  testing::FakeCaStore store;
  RangeAllocator a(store, RangeKind::request, 1, "t", 2, 0);
  ASSERT_TRUE(a.restore({}));
  ASSERT_TRUE(a.next());
  ASSERT_TRUE(a.next());
  store.set_unavailable(true);
  auto v = a.next();
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().is(ErrorCode::unavailable));
  store.set_unavailable(false);
  EXPECT_EQ(*a.next(), 3u);
}

}  // namespace
}  // namespace ca::authority
