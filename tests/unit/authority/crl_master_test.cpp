// CRL master election over a fake directory (one server: compare-and-set is exclusive).
#include "authority/crl_master.hpp"

#include <thread>

#include <gtest/gtest.h>

#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;

ElectionOptions quick(std::chrono::milliseconds lease = 300ms) {
  ElectionOptions o;
  o.lease = lease;
  o.settle = 20ms;
  return o;
}

TEST(CrlMasterElection, TheFirstInstanceTakesTheFreeLease) {
  testing::FakeCaStore store;
  CrlMasterElection a(store, "ca-1", quick());
  EXPECT_TRUE(a.run_round());
  EXPECT_TRUE(a.is_master());
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->holder, "ca-1");
  EXPECT_TRUE(a.run_round()) << "renewal by the holder failed";
}

TEST(CrlMasterElection, OthersWaitWhileTheLeaseIsRenewed) {
  testing::FakeCaStore store;
  CrlMasterElection a(store, "ca-1", quick());
  CrlMasterElection b(store, "ca-2", quick());
  ASSERT_TRUE(a.run_round());
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(a.run_round());
    EXPECT_FALSE(b.run_round());
  }
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->holder, "ca-1");
}

TEST(CrlMasterElection, ASilentMasterIsReplacedAndStepsDownWhenItComesBack) {
  testing::FakeCaStore store;
  CrlMasterElection a(store, "ca-1", quick());
  CrlMasterElection b(store, "ca-2", quick());
  ASSERT_TRUE(a.run_round());
  EXPECT_FALSE(b.run_round());
  std::this_thread::sleep_for(400ms);  // a stops renewing (hung, partitioned): the lease runs out
  EXPECT_FALSE(b.run_round()) << "an expired lease is taken only when a second look, settle later, agrees";
  std::this_thread::sleep_for(30ms);
  EXPECT_TRUE(b.run_round());
  EXPECT_FALSE(a.run_round()) << "the old master's renewal should be refused";
  EXPECT_FALSE(a.is_master());
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->holder, "ca-2");
}

TEST(CrlMasterElection, AnExpiredLeaseThatIsRenewedBeforeTheSecondLookIsNotTaken) {
  // What a directory back from a freeze shows: the master's lease, expired, until replication
  // brings its renewals.
  testing::FakeCaStore store;
  CrlMasterElection a(store, "ca-1", quick());
  CrlMasterElection b(store, "ca-2", quick());
  ASSERT_TRUE(a.run_round());
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(b.run_round());
  ASSERT_TRUE(a.run_round());  // the renewal arrives
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(b.run_round()) << "took a lease that was renewed in the meantime";
  EXPECT_TRUE(a.is_master());
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->holder, "ca-1");
}

TEST(CrlMasterElection, StoppingReleasesTheLeaseForAnImmediateTakeover) {
  testing::FakeCaStore store;
  CrlMasterElection b(store, "ca-2", quick(60s));
  {
    CrlMasterElection a(store, "ca-1", quick(60s));
    a.start();
    EXPECT_TRUE(a.is_master());
    EXPECT_FALSE(b.run_round());
    a.stop();
  }
  EXPECT_TRUE(b.run_round()) << "a released lease should be free at once, not after 60 s";
}

TEST(CrlMasterElection, IneligibleInstancesNeverGenerateAndChangesAreReported) {
  testing::FakeCaStore store;
  auto options = quick();
  options.eligible = false;
  CrlMasterElection never(store, "ca-3", options);
  EXPECT_FALSE(never.run_round());
  EXPECT_TRUE(store.read_crl_lease("MasterCRL")->holder.empty());

  CrlMasterElection a(store, "ca-1", quick());
  std::vector<bool> changes;
  a.on_change([&](bool master) { changes.push_back(master); });
  a.run_round();
  a.run_round();
  EXPECT_EQ(changes, std::vector<bool>{true});
}

TEST(CrlMasterElection, ADirectoryOutageKeepsTheMasterUntilItsLeaseEnds) {
  testing::FakeCaStore store;
  CrlMasterElection a(store, "ca-1", quick(300ms));
  ASSERT_TRUE(a.run_round());
  store.set_unavailable(true);
  EXPECT_TRUE(a.run_round()) << "a short outage should not stop CRL generation";
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(a.run_round()) << "past its lease the master must stop: another may have taken over";
}

}  // namespace
}  // namespace ca::authority
