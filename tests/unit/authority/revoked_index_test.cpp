// RevokedIndex over the fake store: incremental changes, and the hand-over between CRL pairs.
#include "authority/revocation/revoked_index.hpp"

#include <algorithm>
#include <iostream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

store::RevocationChange revoked(const std::string& serial, int reason = 1) {
  store::RevocationChange c;
  c.serial_hex = serial;
  c.revoked_on = std::chrono::system_clock::now();
  c.reason = reason;
  return c;
}

std::size_t count(std::span<const crypto::CrlEntry> s) { return s.size(); }

TEST(RevokedIndex, AppliedChangesAreSortedAndSeenOnlyOnce) {
  testing::FakeCaStore store;
  RevokedIndex index(store);
  ASSERT_TRUE(index.load());
  auto c = revoked("30001");
  index.apply(c);
  index.apply(revoked("10001"));
  index.apply(c);  // the same change again (a refresh overlapping its margin)
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.delta_since_base().size(), 2u);
  auto unrevoked = c;
  unrevoked.revoked = false;
  index.apply(unrevoked);
  EXPECT_EQ(index.size(), 1u);
  auto delta = index.delta_since_base();
  ASSERT_EQ(delta.size(), 2u);
  EXPECT_EQ(delta[1].reason, 8) << "an unrevoked hold is removeFromCRL in the delta";
}

TEST(RevokedIndex, ARevocationAfterTheBuildGoesIntoTheNextDeltaNotNowhere) {
  testing::FakeCaStore store;
  RevokedIndex index(store);
  ASSERT_TRUE(index.load());
  index.apply(revoked("10001"));
  std::size_t full = 0, changes = 0;
  index.build_and_take_delta([&](auto entries, auto delta, bool) {
    full = count(entries);
    changes = count(delta);
    return 0;
  });
  EXPECT_EQ(full, 1u);
  EXPECT_EQ(changes, 1u);
  // Arrives after the pair was built: not in that full CRL, so it must be in the next delta.
  index.apply(revoked("20001"));
  auto next = index.delta_since_base();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(index.size(), 2u);
}

TEST(RevokedIndex, AFailedPublicationGivesTheChangesBack) {
  testing::FakeCaStore store;
  RevokedIndex index(store);
  ASSERT_TRUE(index.load());
  index.apply(revoked("10001"));
  index.build_and_take_delta([](auto, auto, bool) { return 0; });
  EXPECT_TRUE(index.delta_since_base().empty());
  index.apply(revoked("20001"));
  index.restore_delta();
  EXPECT_EQ(index.delta_since_base().size(), 2u);
}

// After a (re)load the index cannot say what changed since the last published CRL (another
// instance may have published it): the next pair must start a fresh base, then deltas resume.
TEST(RevokedIndex, AfterALoadTheNextPairIsAFreshBase) {
  testing::FakeCaStore store;
  RevokedIndex index(store);
  ASSERT_TRUE(index.load());
  index.apply(revoked("10001"));
  bool complete = true;
  index.build_and_take_delta([&](auto, auto, bool c) { return complete = c, 0; });
  EXPECT_FALSE(complete) << "the first pair after a load claimed a complete delta";
  index.apply(revoked("20001"));
  index.build_and_take_delta([&](auto, auto, bool c) { return complete = c, 0; });
  EXPECT_TRUE(complete);
  // A failed pair gives back its incompleteness too.
  ASSERT_TRUE(index.load());
  index.build_and_take_delta([&](auto, auto, bool c) { return complete = c, 0; });
  index.restore_delta();
  index.build_and_take_delta([&](auto, auto, bool c) { return complete = c, 0; });
  EXPECT_FALSE(complete) << "a failed fresh-base pair was forgotten";
}

TEST(RevokedIndex, AMassRevocationInRandomOrderEndsSortedWithEveryChangeOnce) {
  // 200,000 revocations arriving from the watch in no order (a mass revocation, or a heal), some
  // twice, some released again: merged in batches, the result is what applying them one by one
  // in order gives.
  testing::FakeCaStore store;
  RevokedIndex index(store);
  ASSERT_TRUE(index.load());
  constexpr int kCount = 200000;
  std::vector<int> order(kCount);
  for (int i = 0; i < kCount; ++i) order[static_cast<std::size_t>(i)] = i;
  std::mt19937 random(7);
  std::shuffle(order.begin(), order.end(), random);
  const auto started = std::chrono::steady_clock::now();
  for (int i : order) index.apply(revoked(fmt::format("{:x}", 0x100000 + i)));
  for (int i = 0; i < kCount; i += 1000) index.apply(revoked(fmt::format("{:x}", 0x100000 + i)));  // again
  for (int i = 0; i < kCount; i += 10) {
    auto released = revoked(fmt::format("{:x}", 0x100000 + i));
    released.revoked = false;
    index.apply(released);
  }
  EXPECT_EQ(index.size(), static_cast<std::size_t>(kCount - kCount / 10));
  std::cout << "applied " << kCount << " revocations in random order in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count()
            << " ms\n";
  EXPECT_TRUE(index.contains(*crypto::CrlEntry::from_hex("100001", 0, 0)));
  EXPECT_FALSE(index.contains(*crypto::CrlEntry::from_hex("10000a", 0, 0))) << "a released serial is still listed";
  auto delta = index.delta_since_base();
  ASSERT_EQ(delta.size(), static_cast<std::size_t>(kCount));
  EXPECT_TRUE(std::is_sorted(delta.begin(), delta.end()));
  std::size_t removals = 0;
  for (const auto& e : delta) removals += e.reason == 8 ? 1 : 0;
  EXPECT_EQ(removals, static_cast<std::size_t>(kCount / 10));
  index.build_and_take_delta([&](std::span<const crypto::CrlEntry> entries, std::span<const crypto::CrlEntry>, bool) {
    EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end()));
    for (std::size_t i = 1; i < entries.size(); ++i) EXPECT_FALSE(entries[i - 1].same_serial(entries[i]));
    return 0;
  });
}

}  // namespace
}  // namespace ca::authority
