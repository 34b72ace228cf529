// CRL master election over a fake directory (one server: compare-and-set is exclusive), on a
// hand-driven clock: the tests move time instead of sleeping.
#include "authority/revocation/crl_master.hpp"

#include <gtest/gtest.h>

#include "authority/revocation/crl_numbering.hpp"
#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;

class HandClock final : public ElectionClock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override { return steady_; }
  std::chrono::system_clock::time_point wall_now() const override { return wall_; }
  void advance(std::chrono::milliseconds d) {
    steady_ += d;
    wall_ += d;
  }
  // A machine whose wall clock is off: only the expiry written into the lease changes.
  void skew_wall(std::chrono::milliseconds d) { wall_ += d; }

 private:
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
  std::chrono::system_clock::time_point wall_{std::chrono::system_clock::now()};
};

// Lease 30 s, margin 6 s (lease / 5), settle 1.5 s: the production defaults.
ElectionOptions options(int replica_id) {
  ElectionOptions o;
  o.lease = 30s;
  o.settle = 1500ms;
  o.replica_id = replica_id;
  return o;
}

// Runs rounds the way the election thread does: one every lease / 3.
void rounds(HandClock& clock, std::initializer_list<CrlMasterElection*> who, std::chrono::milliseconds for_how_long) {
  for (auto t = 0ms; t < for_how_long; t += 10s) {
    for (auto* e : who) e->run_round();
    clock.advance(10s);
  }
}

store::CrlLease lease_of(testing::FakeCaStore& store) { return *store.read_crl_lease("MasterCRL"); }

// The first instance takes the free lease and, a settle later, is master.
bool becomes_master(HandClock& clock, CrlMasterElection& e) {
  e.run_round();
  clock.advance(1500ms);
  return e.run_round();
}

TEST(CrlMasterElection, TheFirstInstanceTakesTheFreeLeaseWithAnEpochAndConfirmsAfterSettle) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  EXPECT_FALSE(a.run_round()) << "acting on a takeover before replication could settle";
  EXPECT_EQ(lease_of(store).holder, "ca-1");
  const uint64_t epoch = lease_of(store).epoch;
  EXPECT_EQ(epoch, crl_epoch(1, 1));
  clock.advance(1500ms);
  EXPECT_TRUE(a.run_round());
  EXPECT_TRUE(a.is_master());
  EXPECT_EQ(a.epoch(), epoch);
  clock.advance(10s);
  EXPECT_TRUE(a.run_round()) << "renewal by the holder failed";
  EXPECT_EQ(lease_of(store).epoch, epoch) << "a renewal must keep the epoch";
}

TEST(CrlMasterElection, OthersWaitWhileTheLeaseIsRenewedWhateverTheirWallClockSays) {
  testing::FakeCaStore store;
  HandClock clock_a, clock_b;
  clock_b.skew_wall(10min);  // b's wall clock is 10 minutes ahead: every lease looks expired to it
  CrlMasterElection a(store, "ca-1", options(1), clock_a);
  CrlMasterElection b(store, "ca-2", options(2), clock_b);
  a.run_round();
  clock_a.advance(1500ms);
  ASSERT_TRUE(a.run_round());
  for (int i = 0; i < 12; ++i) {  // two minutes
    clock_a.advance(10s);
    clock_b.advance(10s);
    EXPECT_TRUE(a.run_round());
    EXPECT_FALSE(b.run_round());
  }
  EXPECT_EQ(lease_of(store).holder, "ca-1");
}

TEST(CrlMasterElection, AStalledMasterStopsBeforeAnyoneElseCanTakeOver) {
  // SIGSTOP, a VM pause, a frozen directory: the master's renewals stop. It must stop being master
  // (by its own monotonic clock, without running a round) before the others may take over.
  testing::FakeCaStore store;
  HandClock clock;  // one clock for both: the worst case, no drift to help
  CrlMasterElection a(store, "ca-1", options(1), clock);
  CrlMasterElection b(store, "ca-2", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const auto renewed_at = clock.steady_now();
  const uint64_t old_epoch = a.epoch();
  EXPECT_FALSE(b.run_round());  // b first sees a's renewed lease now
  // a stalls from here on. Step in 500 ms: at no moment are both master, and b takes over.
  std::optional<std::chrono::milliseconds> a_stopped, b_started;
  for (auto t = 0ms; t < 60s; t += 500ms) {
    clock.advance(500ms);
    b.run_round();
    const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(clock.steady_now() - renewed_at);
    if (!a.is_master() && !a_stopped) a_stopped = since;
    if (b.is_master() && !b_started) b_started = since;
    ASSERT_FALSE(a.is_master() && b.is_master()) << "two masters " << since.count() << " ms after the last renewal";
  }
  ASSERT_TRUE(a_stopped && b_started);
  EXPECT_EQ(*a_stopped, 24000ms) << "the master should stop at lease - margin after its last renewal";
  EXPECT_GE(*b_started, 36000ms) << "taken over before lease + margin";
  EXPECT_GT(b.epoch(), old_epoch) << "a takeover must mint a higher epoch";
  // a resumes: it is not master, and its renewal is refused (the lease moved on).
  EXPECT_FALSE(a.is_master());
  EXPECT_FALSE(a.run_round());
  EXPECT_EQ(lease_of(store).holder, "ca-2");
  EXPECT_EQ(a.epoch(), 0u);
}

TEST(CrlMasterElection, TakeoversOnBothSidesOfAPartitionMintDifferentEpochs) {
  // Two directories that cannot replicate: each side sees the same old lease and takes it over.
  testing::FakeCaStore left, right;
  HandClock clock;
  const store::CrlLease old{"ca-1", clock.wall_now(), crl_epoch(3, 1), {}, {}};
  ASSERT_TRUE(left.write_crl_lease("MasterCRL", {}, old));
  ASSERT_TRUE(right.write_crl_lease("MasterCRL", {}, old));
  CrlMasterElection b(left, "ca-2", options(2), clock);
  CrlMasterElection c(right, "ca-3", options(3), clock);
  rounds(clock, {&b, &c}, 60s);
  ASSERT_TRUE(b.is_master());
  ASSERT_TRUE(c.is_master());
  EXPECT_NE(b.epoch(), c.epoch());
  EXPECT_EQ(epoch_generation(b.epoch()), 4u);
  EXPECT_EQ(epoch_generation(c.epoch()), 4u);
  // Their CRL number ranges cannot overlap.
  EXPECT_GT(first_crl_number(b.epoch()) > first_crl_number(c.epoch()) ? first_crl_number(b.epoch())
                                                                      : first_crl_number(c.epoch()),
            last_crl_number(std::min(b.epoch(), c.epoch())));
}

TEST(CrlMasterElection, ADeposedMasterThatGetsTheLeaseBackMintsANewEpochWhenItSeesALaterNumber) {
  // After a heal, the last writer's lease wins: here the old master's, while the other side
  // published CRLs of a later epoch. Its next numbers must still be above those.
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const uint64_t mine = a.epoch();
  const uint64_t theirs = crl_epoch(epoch_generation(mine) + 1, 2);
  a.observe_crl_number(first_crl_number(theirs) + 7);
  clock.advance(10s);
  ASSERT_TRUE(a.run_round());
  EXPECT_GT(a.epoch(), theirs);
  EXPECT_EQ(lease_of(store).epoch, a.epoch());
}

TEST(CrlMasterElection, ARestartedHolderTakesItsLeaseBackOnlyIfNobodyRenewsItAndWithANewEpoch) {
  // After a SIGKILL the directory still names this instance; it may be behind, and another
  // instance may hold the lease by now: never carry on with the old epoch.
  testing::FakeCaStore store;
  HandClock clock;
  const uint64_t old_epoch = crl_epoch(5, 1);
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", {}, {"ca-1", clock.wall_now() + 30s, old_epoch, {}, {}}));
  clock.advance(5s);
  CrlMasterElection again(store, "ca-1", options(1), clock);
  EXPECT_FALSE(again.run_round()) << "carried on with a lease its directory may show from before another takeover";
  // Nobody renews it: after lease + margin the restarted instance takes it over, with a new epoch.
  rounds(clock, {&again}, 60s);
  EXPECT_TRUE(again.is_master());
  EXPECT_GT(again.epoch(), old_epoch);
  EXPECT_EQ(again.epoch(), lease_of(store).epoch);
}

TEST(CrlMasterElection, AReleasedLeaseIsTakenAtOnce) {
  testing::FakeCaStore store;
  HandClock clock;
  {
    CrlMasterElection a(store, "ca-1", options(1), clock);
    a.run_round();
    clock.advance(1500ms);
    ASSERT_TRUE(a.run_round());
    a.stop();
    EXPECT_FALSE(a.is_master());
  }
  CrlMasterElection b(store, "ca-2", options(2), clock);
  EXPECT_FALSE(b.run_round());
  EXPECT_EQ(lease_of(store).holder, "ca-2") << "a released lease should be taken at first sight";
  clock.advance(1500ms);
  EXPECT_TRUE(b.run_round());
}

TEST(CrlMasterElection, HandoverMovesTheLeaseWithoutAGapAndWithANewEpoch) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  CrlMasterElection b(store, "ca-2", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const uint64_t before = a.epoch();
  EXPECT_FALSE(b.run_round());
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", store::CaStore::CrlRoleHint::handover, "ca-2"));
  clock.advance(10s);
  EXPECT_FALSE(a.run_round());
  EXPECT_FALSE(a.is_master()) << "the old holder must stop before the lease names the new one";
  auto lease = lease_of(store);
  EXPECT_EQ(lease.holder, "ca-2");
  EXPECT_TRUE(lease.handover.empty());
  EXPECT_GT(lease.epoch, before);
  EXPECT_GT(lease.expires, clock.wall_now()) << "the lease must never lapse during a handover";
  EXPECT_TRUE(b.run_round());
  EXPECT_EQ(b.epoch(), lease.epoch);
  clock.advance(10s);
  EXPECT_FALSE(a.run_round()) << "the old holder took the lease back";
  EXPECT_TRUE(b.run_round());
}

TEST(CrlMasterElection, DemoteGivesTheLeaseUpAndTheOldHolderDoesNotTakeItBackAtOnce) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  CrlMasterElection b(store, "ca-2", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", store::CaStore::CrlRoleHint::handover, "*"));
  clock.advance(10s);
  EXPECT_FALSE(a.run_round());
  EXPECT_FALSE(a.run_round()) << "the demoted instance took its released lease back";
  EXPECT_FALSE(b.run_round());
  EXPECT_EQ(lease_of(store).holder, "ca-2");
  clock.advance(1500ms);
  EXPECT_TRUE(b.run_round());
}

TEST(CrlMasterElection, APinKeepsTheRoleOnOneInstance) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  CrlMasterElection b(store, "ca-2", options(2), clock);
  CrlMasterElection c(store, "ca-3", options(3), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  EXPECT_FALSE(b.run_round());
  EXPECT_FALSE(c.run_round());
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", store::CaStore::CrlRoleHint::pinned, "ca-3"));
  rounds(clock, {&a, &b, &c}, 30s);
  EXPECT_TRUE(c.is_master());
  EXPECT_FALSE(a.is_master());
  EXPECT_FALSE(b.is_master());
  // The pinned instance dies: nobody else takes the role (that is what a pin is for).
  rounds(clock, {&a, &b}, 5min);
  EXPECT_FALSE(a.is_master());
  EXPECT_FALSE(b.is_master());
  EXPECT_EQ(lease_of(store).holder, "ca-3");
  // Unpinned: the expired lease is taken over by one of the others.
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", store::CaStore::CrlRoleHint::pinned, ""));
  rounds(clock, {&a, &b}, 2min);
  EXPECT_NE(a.is_master(), b.is_master());
}

TEST(CrlMasterElection, AnIneligibleInstanceNeverTakesTheLease) {
  testing::FakeCaStore store;
  HandClock clock;
  auto o = options(2);
  o.eligible = false;
  CrlMasterElection b(store, "ca-2", o, clock);
  rounds(clock, {&b}, 2min);
  EXPECT_FALSE(b.is_master());
  EXPECT_TRUE(lease_of(store).holder.empty());
}

TEST(CrlMasterElection, ALostDirectoryEndsMastershipWhenTheLeaseWouldRunOut) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  store.set_unavailable(true);
  clock.advance(10s);
  EXPECT_TRUE(a.run_round()) << "a short outage should not stop CRLs";
  clock.advance(15s);
  EXPECT_FALSE(a.run_round());
  EXPECT_FALSE(a.is_master());
}

// Two directories replicating the lease as syncrepl does (every epoch entry, the later write of one
// entry winning), and one election on each.
void replicate(testing::FakeCaStore& a, testing::FakeCaStore& b) {
  a.replicate_crl_leases_from(b);
  b.replicate_crl_leases_from(a);
}

// The CRL master's directory freezes past the lease: a clone takes over in its own directory. After
// the thaw, replication into the old master's directory is held back, so that directory still names
// the old master at its old epoch. The old master must not renew that epoch (a renewal written now
// is the newer write), must not act as master, and once replication resumes everybody agrees.
TEST(CrlMasterElection, AHolderWhoseLeaseLapsedNeverRenewsThatEpochThoughItsDirectoryStillNamesIt) {
  testing::FakeCaStore dir_a, dir_b;
  HandClock clock;
  CrlMasterElection a(dir_a, "master", options(1), clock);
  CrlMasterElection b(dir_b, "clone1", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const uint64_t old_epoch = a.epoch();
  replicate(dir_a, dir_b);
  EXPECT_FALSE(b.run_round());

  dir_a.set_unavailable(true);  // frozen: reads and writes time out
  bool b_master = false;
  for (auto t = 0ms; t < 60s && !b_master; t += 10s) {
    clock.advance(10s);
    a.run_round();
    b_master = b.run_round();
    if (!b_master && lease_of(dir_b).holder == "clone1") {
      clock.advance(1500ms);  // the takeover's settle
      b_master = b.run_round();
    }
    ASSERT_FALSE(a.is_master() && b.is_master()) << "two masters while the directory was frozen";
  }
  ASSERT_TRUE(b_master);
  EXPECT_FALSE(a.is_master());
  const uint64_t new_epoch = b.epoch();
  ASSERT_GT(new_epoch, old_epoch);

  dir_a.set_unavailable(false);  // thawed; the takeover has not replicated into it yet
  const auto before = lease_of(dir_a);
  ASSERT_EQ(before.holder, "master");
  ASSERT_EQ(before.epoch, old_epoch);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(a.run_round()) << "round " << i << ": the old master acted on an epoch that lapsed by its own clock";
    EXPECT_FALSE(a.is_master());
    clock.advance(1s);
  }
  EXPECT_EQ(lease_of(dir_a).expires, before.expires) << "the lapsed epoch was renewed in the stale directory";
  EXPECT_TRUE(b.run_round());

  replicate(dir_a, dir_b);
  for (int i = 0; i < 6; ++i) {
    clock.advance(10s);
    EXPECT_FALSE(a.run_round());
    EXPECT_TRUE(b.run_round());
    replicate(dir_a, dir_b);
  }
  EXPECT_EQ(lease_of(dir_a).epoch, new_epoch);
  EXPECT_EQ(lease_of(dir_b).epoch, new_epoch);
  EXPECT_EQ(a.epoch_regressions(), 0u);
}

// The old master of the case above, had its stale directory been left alone for longer than a lease:
// it stands for election like anyone, so it takes the lease (its side has no other master) only with
// a NEW epoch, and after the heal the higher epoch is followed by both.
TEST(CrlMasterElection, ALapsedHolderLeftAloneTakesANewEpochAndTheHigherEpochWinsAfterTheHeal) {
  testing::FakeCaStore dir_a, dir_b;
  HandClock clock;
  CrlMasterElection a(dir_a, "master", options(1), clock);
  CrlMasterElection b(dir_b, "clone1", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const uint64_t old_epoch = a.epoch();
  replicate(dir_a, dir_b);
  dir_a.set_unavailable(true);
  rounds(clock, {&a, &b}, 60s);
  ASSERT_TRUE(b.is_master());
  dir_a.set_unavailable(false);
  rounds(clock, {&a, &b}, 60s);  // no replication: two sides
  ASSERT_TRUE(a.is_master());
  EXPECT_NE(a.epoch(), old_epoch) << "a lapsed epoch came back to life";
  replicate(dir_a, dir_b);
  const uint64_t winner = std::max(a.epoch(), b.epoch());
  rounds(clock, {&a, &b}, 30s);
  replicate(dir_a, dir_b);
  rounds(clock, {&a, &b}, 30s);
  EXPECT_NE(a.is_master(), b.is_master());
  EXPECT_EQ(std::max(a.epoch(), b.epoch()), winner) << "the lower epoch went on";
  EXPECT_EQ(lease_of(dir_a).epoch, winner);
  EXPECT_EQ(lease_of(dir_b).epoch, winner);
}

// A directory whose highest epoch went down (restored from an old backup): nobody yields to the
// lower epoch, nobody renews it, and the round is counted for /metrics and /readyz.
TEST(CrlMasterElection, NobodyFollowsALeaseWhoseEpochWentDown) {
  testing::FakeCaStore store;
  HandClock clock;
  CrlMasterElection a(store, "ca-1", options(1), clock);
  CrlMasterElection b(store, "ca-2", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  const uint64_t first = a.epoch();
  EXPECT_FALSE(b.run_round());
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", store::CaStore::CrlRoleHint::handover, "ca-2"));
  clock.advance(10s);
  EXPECT_FALSE(a.run_round());
  ASSERT_TRUE(b.run_round());
  const uint64_t second = b.epoch();
  ASSERT_GT(second, first);

  store.drop_crl_lease_epoch("MasterCRL", second);
  const auto stale = lease_of(store);
  ASSERT_EQ(stale.epoch, first);
  clock.advance(1s);
  EXPECT_FALSE(a.run_round()) << "the old holder renewed an epoch it had handed over";
  EXPECT_TRUE(b.run_round()) << "the holder yielded to a lower epoch";
  EXPECT_EQ(b.epoch(), second);
  EXPECT_EQ(lease_of(store).expires, stale.expires) << "the lower epoch was renewed";
  EXPECT_EQ(a.epoch_regressions(), 1u);
  EXPECT_EQ(b.epoch_regressions(), 1u);
}

// An instance whose own directory could not be read for a while (frozen, then thawed with the
// replication backlog still to come) judges the lease unchanged only from its first read after the
// outage: what its directory shows then may be behind, not a holder that stopped renewing.
TEST(CrlMasterElection, ALeaseLastSeenBeforeAnOutageIsNotTakenOverAtTheFirstReadAfterIt) {
  testing::FakeCaStore dir_a, dir_b;
  HandClock clock;
  CrlMasterElection a(dir_a, "master", options(1), clock);
  CrlMasterElection b(dir_b, "clone1", options(2), clock);
  ASSERT_TRUE(becomes_master(clock, a));
  replicate(dir_a, dir_b);
  EXPECT_FALSE(b.run_round());  // b first sees the lease
  dir_b.set_unavailable(true);  // b's directory freezes; a renews in its own all along
  for (int i = 0; i < 6; ++i) {
    clock.advance(10s);
    EXPECT_TRUE(a.run_round());
    EXPECT_FALSE(b.run_round());
  }
  dir_b.set_unavailable(false);  // thawed, the backlog (a's renewals) not there yet
  EXPECT_FALSE(b.run_round());
  EXPECT_EQ(lease_of(dir_b).holder, "master") << "took over a lease that was renewed all along";
  replicate(dir_a, dir_b);
  for (int i = 0; i < 6; ++i) {
    clock.advance(10s);
    EXPECT_TRUE(a.run_round());
    EXPECT_FALSE(b.run_round());
    replicate(dir_a, dir_b);
  }
  EXPECT_EQ(lease_of(dir_b).holder, "master");
}

}  // namespace
}  // namespace ca::authority
