#include "crl_role_move.hpp"

#include <chrono>

#include <gtest/gtest.h>

#include "authority/revocation/crl_master.hpp"

namespace ca::clone_tools {
namespace {

using namespace std::chrono_literals;
using Clock = CrlRoleMove::Clock;
constexpr auto kSettle = 1500ms;

// Wall-clock expiries: second `n` of a fixed day.
store::TimePoint second(int n) { return store::TimePoint{} + 20000 * 24h + std::chrono::seconds(n); }

store::CrlLease lease(std::string holder, uint64_t epoch, int expires_second, std::string handover = {},
                      std::string pinned = {}) {
  return store::CrlLease{std::move(holder), second(expires_second), epoch, std::move(pinned), std::move(handover)};
}
store::CrlLease given_back(std::string holder, uint64_t epoch) {
  return store::CrlLease{std::move(holder), authority::kCrlLeaseGivenBack, epoch, {}, {}};
}

// The monotonic time the tests drive: `ms` after an arbitrary start.
Clock::time_point t(int ms) { return Clock::time_point{} + 1000h + std::chrono::milliseconds(ms); }

TEST(CrlRoleMoveTest, PromoteIsDoneOnlyOnceTheTargetRenewedTheLeaseItWasHanded) {
  auto move = CrlRoleMove::towards("clone2", RoleRequest::handover, lease("master", 4097, 10), kSettle);
  EXPECT_EQ(move.observe(lease("master", 4097, 10, "clone2"), t(0)).progress, RoleMoveProgress::waiting);
  EXPECT_EQ(move.observe(lease("master", 4097, 11, "clone2"), t(1000)).progress, RoleMoveProgress::waiting);
  // The holder wrote the lease over (new epoch, request cleared): not yet renewed by the target.
  auto handed = move.observe(lease("clone2", 8195, 12), t(1300));
  EXPECT_EQ(handed.progress, RoleMoveProgress::handed_over);
  EXPECT_FALSE(handed.request_missing) << "a consumed handover request is not missing";
  EXPECT_EQ(move.observe(lease("clone2", 8195, 12), t(1500)).progress, RoleMoveProgress::handed_over);
  EXPECT_EQ(move.observe(lease("clone2", 8195, 13), t(2600)).progress, RoleMoveProgress::done);
}

TEST(CrlRoleMoveTest, ALostHandoverRequestIsReportedMissingAfterSettleOnly) {
  auto move = CrlRoleMove::towards("clone2", RoleRequest::handover, lease("master", 4097, 10), kSettle);
  // A renewal from another directory replaced the entry without the request.
  EXPECT_FALSE(move.observe(lease("master", 4097, 11), t(0)).request_missing);
  EXPECT_FALSE(move.observe(lease("master", 4097, 11), t(1000)).request_missing);
  EXPECT_TRUE(move.observe(lease("master", 4097, 12), t(1600)).request_missing);
  move.request_rewritten(t(1600));
  EXPECT_FALSE(move.observe(lease("master", 4097, 12), t(1700)).request_missing);
  EXPECT_FALSE(move.observe(lease("master", 4097, 12, "clone2"), t(3200)).request_missing);
}

TEST(CrlRoleMoveTest, AHolderChangeRestartsTheMissingClock) {
  // The holder died; another instance took the lease over, which clears any handover request.
  auto move = CrlRoleMove::towards("clone2", RoleRequest::handover, lease("master", 4097, 10, "clone2"), kSettle);
  EXPECT_FALSE(move.observe(lease("master", 4097, 10), t(0)).request_missing);
  EXPECT_FALSE(move.observe(lease("clone1", 8194, 20), t(1000)).request_missing);
  EXPECT_FALSE(move.observe(lease("clone1", 8194, 21), t(2000)).request_missing);
  EXPECT_TRUE(move.observe(lease("clone1", 8194, 22), t(2600)).request_missing);
}

TEST(CrlRoleMoveTest, ATargetThatGivesTheLeaseBackDidNotKeepIt) {
  auto move = CrlRoleMove::towards("clone2", RoleRequest::handover, lease("master", 4097, 10), kSettle);
  EXPECT_EQ(move.observe(lease("clone2", 8195, 12), t(0)).progress, RoleMoveProgress::handed_over);
  EXPECT_EQ(move.observe(given_back("clone2", 8195), t(400)).progress, RoleMoveProgress::target_let_go);
}

TEST(CrlRoleMoveTest, TheSameHolderUnderTheOldEpochIsNotTheTarget) {
  // The target held the lease before, under an older epoch: only a later epoch counts.
  auto move = CrlRoleMove::towards("clone2", RoleRequest::handover, given_back("clone2", 8195), kSettle);
  EXPECT_EQ(move.observe(given_back("clone2", 8195), t(0)).progress, RoleMoveProgress::given_back);
  EXPECT_EQ(move.observe(lease("clone1", 12290, 20), t(100)).progress, RoleMoveProgress::waiting);
}

TEST(CrlRoleMoveTest, PinIsDoneOnceTheTargetRenewedWithThePinInPlace) {
  // The target holds the lease already: a renewal carrying the pin finishes it.
  auto move = CrlRoleMove::towards("clone1", RoleRequest::pin, lease("clone1", 8194, 10), kSettle);
  EXPECT_EQ(move.observe(lease("clone1", 8194, 10, "", "clone1"), t(0)).progress, RoleMoveProgress::handed_over);
  // A renewal without the pin (written before the pin reached that directory) does not count.
  auto unpinned = move.observe(lease("clone1", 8194, 11), t(1000));
  EXPECT_EQ(unpinned.progress, RoleMoveProgress::handed_over);
  EXPECT_FALSE(unpinned.request_missing);
  EXPECT_TRUE(move.observe(lease("clone1", 8194, 11), t(2600)).request_missing);
  move.request_rewritten(t(2600));
  EXPECT_EQ(move.observe(lease("clone1", 8194, 11, "", "clone1"), t(2700)).progress, RoleMoveProgress::handed_over);
  EXPECT_EQ(move.observe(lease("clone1", 8194, 12, "", "clone1"), t(3700)).progress, RoleMoveProgress::done);
}

TEST(CrlRoleMoveTest, PinToAnotherInstanceWaitsForTheHandover) {
  auto move = CrlRoleMove::towards("clone1", RoleRequest::pin, lease("master", 4097, 10), kSettle);
  EXPECT_EQ(move.observe(lease("master", 4097, 10, "", "clone1"), t(0)).progress, RoleMoveProgress::waiting);
  EXPECT_EQ(move.observe(lease("clone1", 8194, 12, "", "clone1"), t(1300)).progress, RoleMoveProgress::handed_over);
  EXPECT_EQ(move.observe(lease("clone1", 8194, 13, "", "clone1"), t(2600)).progress, RoleMoveProgress::done);
}

TEST(CrlRoleMoveTest, DemoteIsDoneWhenAnotherInstanceHoldsTheLease) {
  auto move = CrlRoleMove::away(lease("master", 4097, 10), kSettle);
  EXPECT_EQ(move.request_value(), "*");
  EXPECT_EQ(move.observe(lease("master", 4097, 10, "*"), t(0)).progress, RoleMoveProgress::waiting);
  auto released = move.observe(given_back("master", 4097), t(1300));
  EXPECT_EQ(released.progress, RoleMoveProgress::given_back);
  EXPECT_FALSE(released.request_missing);
  EXPECT_EQ(move.observe(lease("clone1", 8194, 15), t(1500)).progress, RoleMoveProgress::done);
}

TEST(CrlRoleMoveTest, DemoteFailsWhenTheOldHolderTakesTheLeaseBack) {
  auto move = CrlRoleMove::away(lease("master", 4097, 10), kSettle);
  EXPECT_EQ(move.observe(given_back("master", 4097), t(0)).progress, RoleMoveProgress::given_back);
  EXPECT_EQ(move.observe(lease("master", 8193, 20), t(4000)).progress, RoleMoveProgress::taken_back);
  EXPECT_TRUE(role_move_finished(RoleMoveProgress::taken_back));
}

TEST(CrlRoleMoveTest, ALostDemoteRequestIsReportedMissing) {
  auto move = CrlRoleMove::away(lease("master", 4097, 10), kSettle);
  EXPECT_FALSE(move.observe(lease("master", 4097, 11), t(0)).request_missing);
  EXPECT_TRUE(move.observe(lease("master", 4097, 12), t(1500)).request_missing);
}

TEST(CrlRoleMoveTest, ProgressNamesAreStable) {
  EXPECT_EQ(role_move_progress_name(RoleMoveProgress::handed_over), "handed_over");
  EXPECT_EQ(role_move_progress_name(RoleMoveProgress::target_let_go), "target_let_go");
  EXPECT_FALSE(role_move_finished(RoleMoveProgress::given_back));
}

}  // namespace
}  // namespace ca::clone_tools
