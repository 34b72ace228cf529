// Claim records <-> directory entries, without a directory: what an add writes reads back as the
// same record, a nonce swap is a compare-and-set, and an entry missing a field is refused.
#include "store/ldap/claim_entries.hpp"

#include <gtest/gtest.h>

namespace ca::store {
namespace {

TimePoint at(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }

ClaimRecord spent_code() {
  ClaimRecord c;
  c.id = ClaimId{ClaimContainer::single_use, "enrollment_code", "ab12"};
  c.digest = "enrollment_code:ab12";
  c.state = "spent";
  c.nonce = "0123456789abcdef01234567";
  c.instance_id = "ca-1";
  c.created_at = at(1'800'000'000);
  c.expires_at = at(1'800'086'400);
  return c;
}

ClaimRecord answered_key() {
  ClaimRecord c;
  c.id = ClaimId{ClaimContainer::idempotency_key, "", std::string(64, 'e')};
  c.digest = std::string(64, 'd');
  c.state = "done";
  c.nonce = "feedfacefeedfacefeedface";
  c.instance_id = "ca-2";
  c.created_at = at(1'800'000'000);
  c.expires_at = at(1'800'086'400);
  c.stored_response = "201\n{\"id\": \"0x1\"}";
  return c;
}

TEST(ClaimEntriesTest, EachKindOfClaimHasItsOwnName) {
  EXPECT_EQ(claim_dn("o=pki-ca", spent_code().id), "cn=enrollment_code-ab12,ou=singleUseClaims,o=pki-ca");
  EXPECT_EQ(claim_dn("o=pki-ca", ClaimId{ClaimContainer::single_use, "key_retrieval", "ab12"}),
            "cn=key_retrieval-ab12,ou=singleUseClaims,o=pki-ca");
  EXPECT_EQ(claim_dn("o=pki-ca", ClaimId{ClaimContainer::idempotency_key, "", "ab12"}),
            "cn=ab12,ou=idempotencyKeys,o=pki-ca");
  // A token is a value inside the DN, never a part of its structure.
  EXPECT_EQ(claim_dn("o=x", ClaimId{ClaimContainer::single_use, "enrollment_code", "a,ou=b"}),
            "cn=enrollment_code-a\\,ou\\=b,ou=singleUseClaims,o=x");
}

TEST(ClaimEntriesTest, AClaimReadsBackAsItWasWritten) {
  for (const ClaimRecord& claim : {spent_code(), answered_key()}) {
    SCOPED_TRACE(claim.id.name());
    const auto attributes = claim_attributes(claim);
    auto back = claim_from_entry(claim.id, entry_of(claim_dn("o=pki-ca", claim.id), attributes));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, claim);
  }
}

TEST(ClaimEntriesTest, TheEntryIsOfTheClaimClassAndNamedAfterTheClaim) {
  const auto entry = entry_of("cn=x", claim_attributes(spent_code()));
  EXPECT_EQ(entry.first_or("objectClass"), "caIdempotencyClaim");
  EXPECT_EQ(entry.first_or("cn"), "enrollment_code-ab12");
  EXPECT_EQ(entry.first_or("caCreatedAt"), "20270115080000Z");
  EXPECT_EQ(entry.values("caStoredResponse"), nullptr) << "nothing stored for a spent code";
}

TEST(ClaimEntriesTest, TheModifiedTimeIsRead) {
  auto attributes = claim_attributes(spent_code());
  attributes.push_back({"caModifiedAt", {"20270115090000Z"}});
  auto back = claim_from_entry(spent_code().id, entry_of("cn=x", attributes));
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_TRUE(back->modified_at);
  EXPECT_EQ(*back->modified_at, at(1'800'003'600));
}

TEST(ClaimEntriesTest, AnEntryWithoutStateNonceOrTimesIsRefused) {
  for (const std::string missing : {"caCodeState", "caClaimNonce", "caCreatedAt", "caExpiresAt"}) {
    SCOPED_TRACE(missing);
    std::vector<LdapAttribute> attributes;
    for (const auto& a : claim_attributes(spent_code()))
      if (a.name != missing) attributes.push_back(a);
    auto back = claim_from_entry(spent_code().id, entry_of("cn=x", attributes));
    ASSERT_FALSE(back);
    EXPECT_TRUE(back.error().is(ErrorCode::directory)) << back.error().message;
    EXPECT_NE(back.error().message.find(missing), std::string::npos) << back.error().message;
  }
}

TEST(ClaimEntriesTest, AnEntryWithABadTimeIsRefused) {
  auto attributes = claim_attributes(spent_code());
  for (auto& a : attributes)
    if (a.name == "caExpiresAt") a.values = {"tomorrow"};
  auto back = claim_from_entry(spent_code().id, entry_of("cn=x", attributes));
  ASSERT_FALSE(back);
  EXPECT_TRUE(back.error().is(ErrorCode::directory));
  EXPECT_NE(back.error().message.find("'tomorrow' is not a time"), std::string::npos) << back.error().message;
}

TEST(ClaimEntriesTest, ANonceSwapRemovesTheHeldNonceFirstSoAnotherHolderMakesItFail) {
  const auto mods = claim_nonce_swap("old", "new", ClaimChange{.state = "released", .modified_at = at(1'800'003'600)});
  ASSERT_EQ(mods.size(), 4u);
  EXPECT_EQ(mods[0].op, LdapModification::Op::remove);
  EXPECT_EQ(mods[0].attribute, "caClaimNonce");
  EXPECT_EQ(mods[0].values, std::vector<std::string>{"old"});
  EXPECT_EQ(mods[1].op, LdapModification::Op::add);
  EXPECT_EQ(mods[1].values, std::vector<std::string>{"new"});
  EXPECT_EQ(mods[2].attribute, "caCodeState");
  EXPECT_EQ(mods[2].values, std::vector<std::string>{"released"});
  EXPECT_EQ(mods[3].attribute, "caModifiedAt");
  EXPECT_EQ(mods[3].values, std::vector<std::string>{"20270115090000Z"});
  // Only what the change names is replaced.
  EXPECT_EQ(claim_nonce_swap("a", "a", ClaimChange{}).size(), 2u);
}

TEST(ClaimEntriesTest, ExpiredClaimsAreFoundInEveryContainer) {
  EXPECT_EQ(expired_claims_filter(at(1'800'000'000)),
            "(&(objectClass=caIdempotencyClaim)(caExpiresAt<=20270115080000Z))");
  EXPECT_EQ(claim_containers("o=pki-ca"),
            (std::vector<std::string>{"ou=singleUseClaims,o=pki-ca", "ou=idempotencyKeys,o=pki-ca"}));
}

}  // namespace
}  // namespace ca::store
