// Single-use claim entries in a real slapd: made once, given back and made again, an attempt that
// was refused but landed is taken over or given back, expired claims are swept; and a directory made
// by an earlier version (no claim container, no grant for it) gets both at its next start.
#include "authority/cluster/single_use_claims.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/ldap/base_dit.hpp"
#include "store/ldap/claim_entries.hpp"
#include "store/ldap/ldap_claim_store.hpp"
#include "store/ldap/ldap_connection.hpp"
#include "support/directory_fixture.hpp"
#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using ca::testing::FakeCaStore;
using ca::testing::TestDirectory;

// An instance alone (no directory URL registered): its own directory is the home of every token.
struct LoneInstance {
  LoneInstance(const TestDirectory& directory, std::string name, ClaimOptions options = {})
      : suffix(directory.suffix()),
        claims(
            1, std::move(name), store,
            std::make_shared<store::LdapClaimStore>(std::make_shared<store::LdapPool>(directory.endpoint(), 2),
                                                    directory.suffix()),
            [](const ClaimDirectory&) { return nullptr; }, options) {}
  std::string claim_dn(ClaimKind kind, std::string_view token) const {
    return store::claim_dn(suffix, SingleUseClaims::claim_id(kind, token));
  }
  std::string suffix;
  FakeCaStore store;
  SingleUseClaims claims;
};

std::string state_of(const TestDirectory& directory, const std::string& dn) {
  auto conn = store::LdapConnection::open(directory.endpoint());
  EXPECT_TRUE(conn);
  if (!conn) return {};
  auto entry = (*conn)->read(dn, {"caCodeState"});
  EXPECT_TRUE(entry);
  return entry && *entry ? (*entry)->first_or("caCodeState") : "(none)";
}

TEST(ClaimEntries, ATokenIsSpentOnceGivenBackAndSpentAgain) {
  TestDirectory directory;
  LoneInstance a(directory, "a"), b(directory, "b");
  auto first = a.claims.claim(ClaimKind::enrollment_code, "c0de");
  ASSERT_TRUE(first) << first.error().message;
  auto second = b.claims.claim(ClaimKind::enrollment_code, "c0de");
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().is(ErrorCode::conflict)) << second.error().message;
  // Another kind with the same id is another token.
  EXPECT_TRUE(b.claims.claim(ClaimKind::key_retrieval, "c0de"));

  a.claims.release(*first);
  EXPECT_EQ(state_of(directory, a.claim_dn(ClaimKind::enrollment_code, "c0de")), "released");
  auto again = b.claims.claim(ClaimKind::enrollment_code, "c0de");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(a.claims.claim(ClaimKind::enrollment_code, "c0de"));
  // A release of the old claim does not give back the new one.
  a.claims.release(*first);
  EXPECT_EQ(state_of(directory, a.claim_dn(ClaimKind::enrollment_code, "c0de")), "spent");
}

TEST(ClaimEntries, ARefusedAttemptThatLandedIsTakenOverHereOrGivenBackOnceTheHomeAnswers) {
  TestDirectory directory;
  LoneInstance a(directory, "a"), b(directory, "b");
  // What a timed-out add looks like once the home applied it: an entry with a nonce of `a`.
  auto landed = a.claims.claim(ClaimKind::enrollment_code, "1a4d");
  ASSERT_TRUE(landed);
  a.claims.note_abandoned(ClaimKind::enrollment_code, "1a4d", landed->nonce, landed->home, true);
  EXPECT_FALSE(b.claims.claim(ClaimKind::enrollment_code, "1a4d")) << "someone else's claim";
  auto retried = a.claims.claim(ClaimKind::enrollment_code, "1a4d");
  ASSERT_TRUE(retried) << retried.error().message;
  EXPECT_NE(retried->nonce, landed->nonce);

  // Nobody here retries it: it is given back by itself.
  auto other = a.claims.claim(ClaimKind::key_retrieval, "5e77");
  ASSERT_TRUE(other);
  a.claims.note_abandoned(ClaimKind::key_retrieval, "5e77", other->nonce, other->home, true);
  a.claims.settle_abandoned();
  EXPECT_EQ(state_of(directory, a.claim_dn(ClaimKind::key_retrieval, "5e77")), "released");
  EXPECT_TRUE(b.claims.claim(ClaimKind::key_retrieval, "5e77"));
  // The one taken over above is not touched by settling.
  a.claims.settle_abandoned();
  EXPECT_EQ(state_of(directory, a.claim_dn(ClaimKind::enrollment_code, "1a4d")), "spent");
}

TEST(ClaimEntries, ExpiredClaimsAreSwept) {
  TestDirectory directory;
  LoneInstance brief(directory, "a", ClaimOptions{.retention = std::chrono::hours(0)});
  LoneInstance lasting(directory, "b");
  ASSERT_TRUE(brief.claims.claim(ClaimKind::enrollment_code, "aa"));
  ASSERT_TRUE(lasting.claims.claim(ClaimKind::enrollment_code, "bb"));
  auto swept = lasting.claims.sweep_expired();
  ASSERT_TRUE(swept) << swept.error().message;
  EXPECT_EQ(*swept, 1);
  EXPECT_EQ(state_of(directory, brief.claim_dn(ClaimKind::enrollment_code, "aa")), "(none)");
  EXPECT_EQ(state_of(directory, brief.claim_dn(ClaimKind::enrollment_code, "bb")), "spent");
}

std::vector<std::string> access_rules(const store::EmbeddedDirectory& slapd) {
  auto conn = store::LdapConnection::open(slapd.config_endpoint());
  EXPECT_TRUE(conn);
  if (!conn) return {};
  auto entry = (*conn)->read("olcDatabase={1}mdb,cn=config", {"olcAccess"});
  EXPECT_TRUE(entry && *entry);
  if (!entry || !*entry || !(*entry)->values("olcAccess")) return {};
  return *(*entry)->values("olcAccess");
}

TEST(ClaimEntries, ADirectoryOfAnEarlierVersionGetsTheContainerAndItsRulesAtItsNextStart) {
  TestDirectory directory;
  const std::string container = "ou=singleUseClaims," + directory.suffix();
  // slapd shows the rules with their positions, "{3}to ...".
  auto numbered = [](const std::vector<std::string>& rules) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < rules.size(); ++i) out.push_back(fmt::format("{{{}}}{}", i, rules[i]));
    return out;
  };
  const auto wanted = numbered(directory.slapd->access_rules());
  ASSERT_EQ(access_rules(*directory.slapd), wanted);
  // As an earlier version left it: no rule for the container, and no container.
  {
    auto config = store::LdapConnection::open(directory.slapd->config_endpoint());
    ASSERT_TRUE(config);
    std::vector<std::string> earlier;
    for (const auto& rule : directory.slapd->access_rules())
      if (rule.find(container) == std::string::npos) earlier.push_back(rule);
    ASSERT_TRUE((*config)->modify("olcDatabase={1}mdb,cn=config",
                                  {{store::LdapModification::Op::replace, "olcAccess", numbered(earlier)}}));
    auto data = store::LdapConnection::open(directory.endpoint());
    ASSERT_TRUE(data);
    ASSERT_TRUE((*data)->remove(container));
  }
  ASSERT_NE(access_rules(*directory.slapd), wanted);
  directory.slapd->stop();
  ASSERT_TRUE(directory.slapd->start(false));
  ASSERT_TRUE(store::add_missing_containers(directory.endpoint(), directory.suffix()));
  EXPECT_EQ(access_rules(*directory.slapd), wanted);
  LoneInstance a(directory, "a");
  EXPECT_TRUE(a.claims.claim(ClaimKind::enrollment_code, "ab"));
  // Started again: nothing added twice.
  directory.slapd->stop();
  ASSERT_TRUE(directory.slapd->start(false));
  ASSERT_TRUE(store::add_missing_containers(directory.endpoint(), directory.suffix()));
  EXPECT_EQ(access_rules(*directory.slapd), wanted);
}

}  // namespace
}  // namespace ca::authority
