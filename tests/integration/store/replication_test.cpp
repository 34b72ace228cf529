// Multi-provider replication between two real slapd servers, set up with store/replication.
#include "store/ldap/replication.hpp"

#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "support/directory_fixture.hpp"

namespace ca::store {
namespace {

using testing::TestDirectory;

class ReplicationTest : public ::testing::Test {
 protected:
  TestDirectory first{1};
  TestDirectory second{2, false, false};  // empty: gets the tree from `first`
  std::string suffix = first.suffix();

  std::unique_ptr<LdapConnection> open(const TestDirectory& d) {
    auto c = LdapConnection::open(d.endpoint());
    EXPECT_TRUE(c) << c.error().message;
    return std::move(*c);
  }
  bool wait_for(const TestDirectory& d, const std::string& dn, bool present = true) {
    auto conn = open(d);
    for (int i = 0; i < 200; ++i) {
      auto e = conn->read(dn, {"cn"});
      if (e && e->has_value() == present) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  void connect_both_ways() {
    auto a = open(first);
    ASSERT_TRUE(put_replication_account(*a, suffix, 1, "secret-one"));
    ASSERT_TRUE(put_replication_account(*a, suffix, 2, "secret-two"));
    // Plain LDAP: the accounts themselves are made directory peers (ca-server's agreements bind
    // with the directories' certificates instead; DirectoryAccessTest and the cluster tests).
    ASSERT_TRUE(add_directory_peer(*a, suffix, replication_account_dn(suffix, 1)));
    ASSERT_TRUE(add_directory_peer(*a, suffix, replication_account_dn(suffix, 2)));
    // The second directory consumes from the first as replica-2 ...
    ASSERT_TRUE(put_replication_peer(second.slapd->config_endpoint(),
                                     {1, first.slapd->url(), replication_account_dn(suffix, 2), "secret-two"}, suffix));
    ASSERT_TRUE(wait_for(second, replication_account_dn(suffix, 1)));
    // ... and the first from the second as replica-1 (its account reached the second by replication).
    ASSERT_TRUE(put_replication_peer(first.slapd->config_endpoint(),
                                     {2, second.slapd->url(), replication_account_dn(suffix, 1), "secret-one"},
                                     suffix));
  }
  static std::vector<LdapAttribute> device(const std::string& cn) {
    return {{"objectClass", {"device"}}, {"cn", {cn}}};
  }
};

TEST_F(ReplicationTest, EntriesFlowBothWaysAndAgreementsCanBeListedAndRemoved) {
  connect_both_ways();
  std::string on_first = fmt::format("cn=from-first,ou=requests,ou=ca,{}", suffix);
  std::string on_second = fmt::format("cn=from-second,ou=requests,ou=ca,{}", suffix);
  ASSERT_TRUE(open(first)->add(on_first, device("from-first")));
  ASSERT_TRUE(open(second)->add(on_second, device("from-second")));
  EXPECT_TRUE(wait_for(second, on_first));
  EXPECT_TRUE(wait_for(first, on_second));

  auto peers = replication_peers(first.slapd->config_endpoint());
  ASSERT_TRUE(peers) << peers.error().message;
  ASSERT_EQ(peers->size(), 1u);
  EXPECT_EQ((*peers)[0].replica_id, 2);
  EXPECT_EQ((*peers)[0].provider_url, second.slapd->url());
  EXPECT_EQ((*peers)[0].bind_dn, replication_account_dn(suffix, 1));
  EXPECT_EQ((*peers)[0].password, "secret-one");

  auto csns = context_csns(*open(second), suffix);
  ASSERT_TRUE(csns) << csns.error().message;
  EXPECT_TRUE(csns->count(1)) << "no contextCSN of server 1 on the consumer";
  EXPECT_TRUE(csns->count(2)) << "no contextCSN of server 2 after its own write";

  // Cut: without the agreement, a new entry on the second no longer reaches the first.
  auto removed = remove_replication_peer(first.slapd->config_endpoint(), 2, suffix);
  ASSERT_TRUE(removed) << removed.error().message;
  ASSERT_TRUE(*removed);
  // Without agreements the first directory is a plain, writable database again, also after a restart.
  ASSERT_TRUE(open(first)->add(fmt::format("cn=alone,ou=requests,ou=ca,{}", suffix), device("alone")));
  first.slapd->stop();
  ASSERT_TRUE(first.slapd->start(false));
  Status after_restart = open(first)->add(fmt::format("cn=alone2,ou=requests,ou=ca,{}", suffix), device("alone2"));
  ASSERT_TRUE(after_restart) << after_restart.error().message;
  std::string late = fmt::format("cn=late,ou=requests,ou=ca,{}", suffix);
  ASSERT_TRUE(open(second)->add(late, device("late")));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(open(first)->read(late)->has_value());
  // Heal: it arrives.
  ASSERT_TRUE(put_replication_peer(first.slapd->config_endpoint(),
                                   {2, second.slapd->url(), replication_account_dn(suffix, 1), "secret-one"}, suffix));
  EXPECT_TRUE(wait_for(first, late));
}

// The CRL lease through real syncrepl: a directory that did not see a takeover (frozen, then held
// back from replication) takes a renewal of the old epoch AFTER the takeover was written elsewhere.
// Whole-entry last-writer-wins would carry that older epoch everywhere; with one entry per epoch the
// union replicates and both directories agree on the higher epoch.
TEST_F(ReplicationTest, ALateRenewalOfAnOldCrlEpochNeverHidesANewerOne) {
  connect_both_ways();
  LdapCaStore on_first{first.endpoint(), suffix, 2, GroupCommitOptions{}};
  LdapCaStore on_second{second.endpoint(), suffix, 2, GroupCommitOptions{}};
  const auto now = std::chrono::system_clock::now();
  const CrlLease old_lease{"ca-1", now + std::chrono::seconds(30), 4097, {}, {}};
  ASSERT_TRUE(on_first.write_crl_lease("MasterCRL", {}, old_lease));
  const auto epoch_on = [](LdapCaStore& s) {
    auto lease = s.read_crl_lease("MasterCRL");
    return lease ? lease->epoch : 0;
  };
  for (int i = 0; i < 200 && epoch_on(on_second) != 4097; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_EQ(epoch_on(on_second), 4097u);

  auto cut = remove_replication_peer(first.slapd->config_endpoint(), 2, suffix);
  ASSERT_TRUE(cut && *cut);
  ASSERT_TRUE(on_second.write_crl_lease("MasterCRL", old_lease,
                                        CrlLease{"ca-2", now + std::chrono::seconds(30), 8194, {}, {}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // The old holder renews in its own directory, which still shows its epoch: a later write.
  ASSERT_TRUE(
      on_first.write_crl_lease("MasterCRL", old_lease, CrlLease{"ca-1", now + std::chrono::seconds(90), 4097, {}, {}}));
  EXPECT_EQ(epoch_on(on_first), 4097u);
  ASSERT_TRUE(put_replication_peer(first.slapd->config_endpoint(),
                                   {2, second.slapd->url(), replication_account_dn(suffix, 1), "secret-one"}, suffix));
  for (int i = 0; i < 200 && epoch_on(on_first) != 8194; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  // The renewal reached the second directory as well (outbound replication was never cut) ...
  const std::string old_entry = "cn=epoch-4097," + on_second.layout().crl_dn("MasterCRL");
  auto second_conn = open(second);
  auto renewed = second_conn->read(old_entry, {"caLeaseExpires"});
  ASSERT_TRUE(renewed && *renewed);
  EXPECT_EQ((*renewed)->first_or("caLeaseExpires"), to_generalized_time(now + std::chrono::seconds(90)));
  // ... and yet both directories name the higher epoch.
  for (auto* s : {&on_first, &on_second}) {
    auto lease = s->read_crl_lease("MasterCRL");
    ASSERT_TRUE(lease) << lease.error().message;
    EXPECT_EQ(lease->holder, "ca-2");
    EXPECT_EQ(lease->epoch, 8194u);
  }
}

TEST_F(ReplicationTest, AWrongPasswordReplicatesNothingAndARidOutOfRangeIsRefused) {
  auto a = open(first);
  ASSERT_TRUE(put_replication_account(*a, suffix, 2, "right"));
  ASSERT_TRUE(add_directory_peer(*a, suffix, replication_account_dn(suffix, 2)));
  ASSERT_TRUE(put_replication_peer(second.slapd->config_endpoint(),
                                   {1, first.slapd->url(), replication_account_dn(suffix, 2), "wrong"}, suffix));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_FALSE(open(second)->read(suffix)->has_value());
  Status bad = put_replication_peer(second.slapd->config_endpoint(), {1000, first.slapd->url(), "cn=x", "y"}, suffix);
  EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace ca::store
