// RevokedIndex over the fake store: incremental changes, and the hand-over between CRL pairs.
#include "authority/revoked_index.hpp"

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

}  // namespace
}  // namespace ca::authority
