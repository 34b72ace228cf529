// Where a single-use token is claimed: the home choice every instance makes from its own view of the
// registry, and the refusal (never a fallback) when that home does not answer. Directories here are
// loopback ports nothing answers on (refused connections, or a socket that accepts and stays
// silent like a frozen slapd): no slapd needed.
#include "authority/cluster/single_use_claims.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/ldap/ldap_claim_store.hpp"
#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using ca::testing::FakeCaStore;

store::ReplicaRecord directory(int replica_id, std::string url, bool retired = false) {
  store::ReplicaRecord r;
  r.replica_id = replica_id;
  r.instance_id = fmt::format("instance-{}", replica_id);
  r.directory_url = std::move(url);
  r.retired = retired;
  return r;
}

std::vector<std::string> tokens(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(fmt::format("{:016x}", 0x9e3779b97f4a7c15ULL * (i + 1)));
  return out;
}

TEST(ClaimHomeTest, EveryInstanceChoosesTheSameHomeWhateverOrderItReadTheRegistryIn) {
  const std::vector<store::ReplicaRecord> view_a{directory(1, "ldaps://a:636/"), directory(2, "ldaps://b:636/"),
                                                 directory(3, "ldaps://c:636/")};
  // Another instance lists the same directories in another order, and itself without a URL.
  const std::vector<store::ReplicaRecord> view_b{directory(3, "ldaps://c:636/"), directory(7, ""),
                                                 directory(1, "ldaps://a:636/"), directory(2, "ldaps://b:636/")};
  std::set<int> homes;
  for (ClaimKind kind : {ClaimKind::idempotency_key, ClaimKind::enrollment_code, ClaimKind::key_retrieval})
    for (const auto& token : tokens(64)) {
      SCOPED_TRACE(fmt::format("{} {}", claim_kind_name(kind), token));
      auto a = claim_home(kind, token, view_a);
      auto b = claim_home(kind, token, view_b);
      ASSERT_TRUE(a && b);
      EXPECT_EQ(*a, *b);
      homes.insert(a->replica_id);
    }
  // The tokens spread over every directory (a directory is not a home for everything).
  EXPECT_EQ(homes, (std::set<int>{1, 2, 3}));
}

TEST(ClaimHomeTest, ARetiredDirectoryIsNoHomeAndOnlyItsTokensMove) {
  std::vector<store::ReplicaRecord> registry{directory(1, "ldaps://a:636/"), directory(2, "ldaps://b:636/"),
                                             directory(3, "ldaps://c:636/")};
  std::map<std::string, int> before;
  for (const auto& token : tokens(64))
    before[token] = claim_home(ClaimKind::enrollment_code, token, registry)->replica_id;
  registry[1].retired = true;
  int moved = 0;
  for (const auto& token : tokens(64)) {
    auto home = claim_home(ClaimKind::enrollment_code, token, registry);
    ASSERT_TRUE(home);
    EXPECT_NE(home->replica_id, 2) << token;
    if (before[token] == 2)
      ++moved;
    else
      EXPECT_EQ(home->replica_id, before[token]) << token;
  }
  EXPECT_GT(moved, 0);
}

TEST(ClaimHomeTest, ARegistryWithoutDirectoryUrlsHasNoHome) {
  EXPECT_FALSE(claim_home(ClaimKind::key_retrieval, "abc", {}));
  EXPECT_FALSE(claim_home(ClaimKind::key_retrieval, "abc", {directory(1, ""), directory(2, "ldaps://b:636/", true)}));
}

// A port on loopback nothing listens on: connections are refused at once.
std::string refused_url() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // the port is free again, and nothing listens on it
  return fmt::format("ldap://127.0.0.1:{}/", ntohs(addr.sin_port));
}

// A socket that takes connections (the kernel's backlog) and never answers: a frozen slapd.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    url_ = fmt::format("ldap://127.0.0.1:{}/", ntohs(addr.sin_port));
  }
  ~SilentListener() { ::close(fd_); }
  const std::string& url() const { return url_; }

 private:
  int fd_ = -1;
  std::string url_;
};

struct ClaimsUnderTest {
  ClaimsUnderTest(int own_replica_id, const std::vector<store::ReplicaRecord>& registry, ClaimOptions options = {}) {
    for (const auto& r : registry) EXPECT_TRUE(store.save_replica(r));
    local = claim_store(local_url, options);
    claims = std::make_unique<SingleUseClaims>(
        own_replica_id, "test", store, local,
        [this, options](const ClaimDirectory& d) {
          opened.push_back(d.url);
          return claim_store(d.url, options);
        },
        options);
  }
  static std::shared_ptr<store::ClaimStore> claim_store(const std::string& url, const ClaimOptions& options) {
    return std::make_shared<store::LdapClaimStore>(
        std::make_shared<store::LdapPool>(store::LdapEndpoint{url, "", "", options.directory_timeout_ms, ""}, 2),
        "o=pki-ca");
  }
  FakeCaStore store;
  std::string local_url = refused_url();
  std::shared_ptr<store::ClaimStore> local;
  std::vector<std::string> opened;  // the other directories a claim reached for
  std::unique_ptr<SingleUseClaims> claims;
};

// The tokens (of many) whose enrollment-code home is `replica_id` in `registry`.
std::vector<std::string> tokens_homed_at(int replica_id, const std::vector<store::ReplicaRecord>& registry) {
  std::vector<std::string> out;
  for (const auto& token : tokens(256))
    if (claim_home(ClaimKind::enrollment_code, token, registry)->replica_id == replica_id) out.push_back(token);
  EXPECT_GE(out.size(), 2u) << "tokens homed at " << replica_id;
  return out;
}
std::string token_homed_at(int replica_id, const std::vector<store::ReplicaRecord>& registry) {
  auto homed = tokens_homed_at(replica_id, registry);
  return homed.empty() ? "" : homed.front();
}

TEST(SingleUseClaimsTest, AnUnreachableHomeRefusesTheClaimAndNoOtherDirectoryIsTried) {
  const std::string home_url = refused_url();
  const std::vector<store::ReplicaRecord> registry{directory(1, "ldap://127.0.0.1:9/"), directory(2, home_url),
                                                   directory(3, "ldap://127.0.0.1:7/")};
  ClaimsUnderTest t(1, registry, ClaimOptions{.directory_timeout_ms = 300});
  const std::string token = token_homed_at(2, registry);
  auto claimed = t.claims->claim(ClaimKind::enrollment_code, token);
  ASSERT_FALSE(claimed);
  EXPECT_TRUE(claimed.error().is(ErrorCode::unavailable)) << claimed.error().message;
  EXPECT_NE(
      claimed.error().message.find("home directory of this enrollment_code claim (" + home_url + ") cannot be reached"),
      std::string::npos)
      << claimed.error().message;
  // Only the home was reached for: not the next directory in any order, not this instance's own.
  EXPECT_EQ(t.opened, std::vector<std::string>{home_url});
}

TEST(SingleUseClaimsTest, AHomeThatHangsRefusesTheNextClaimsAtOnce) {
  SilentListener frozen;
  const std::vector<store::ReplicaRecord> registry{directory(1, "ldap://127.0.0.1:9/"), directory(2, frozen.url())};
  ClaimsUnderTest t(1, registry,
                    ClaimOptions{.directory_timeout_ms = 600, .hanging_after = std::chrono::milliseconds(100)});
  const auto homed = tokens_homed_at(2, registry);
  ASSERT_GE(homed.size(), 2u);
  auto first = std::async(std::launch::async, [&] { return t.claims->claim(ClaimKind::enrollment_code, homed[0]); });
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const auto started = std::chrono::steady_clock::now();
  auto second = t.claims->claim(ClaimKind::enrollment_code, homed[1]);
  const auto waited = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().is(ErrorCode::unavailable)) << second.error().message;
  EXPECT_LT(waited, std::chrono::milliseconds(200)) << "the second claim waited for the frozen home";
  auto first_result = first.get();
  ASSERT_FALSE(first_result);
  EXPECT_TRUE(first_result.error().is(ErrorCode::unavailable)) << first_result.error().message;
  EXPECT_EQ(t.opened, std::vector<std::string>{frozen.url()});
}

TEST(SingleUseClaimsTest, WithoutRegisteredDirectoriesAnInstanceIsItsOwnHome) {
  ClaimsUnderTest t(5, {directory(5, "")});
  auto home = t.claims->home(ClaimKind::enrollment_code, "abc");
  ASSERT_TRUE(home) << home.error().message;
  EXPECT_EQ(home->directory, (ClaimDirectory{"", 5}));
  EXPECT_EQ(home->claims, t.local);
  EXPECT_TRUE(t.opened.empty());
}

TEST(SingleUseClaimsTest, ADirectoryOfThisInstanceIsReachedThroughItsOwnConnection) {
  const std::vector<store::ReplicaRecord> registry{directory(1, "ldaps://a:636/"), directory(2, "ldaps://b:636/")};
  ClaimsUnderTest t(1, registry);
  auto home = t.claims->home(ClaimKind::enrollment_code, token_homed_at(1, registry));
  ASSERT_TRUE(home);
  EXPECT_EQ(home->directory, (ClaimDirectory{"ldaps://a:636/", 1}));
  EXPECT_EQ(home->claims, t.local);
  EXPECT_TRUE(t.opened.empty());
}

TEST(SingleUseClaimsTest, ClaimsOfEachKindHaveTheirOwnName) {
  EXPECT_EQ(SingleUseClaims::claim_id(ClaimKind::enrollment_code, "ab12"),
            (store::ClaimId{store::ClaimContainer::single_use, "enrollment_code", "ab12"}));
  EXPECT_EQ(SingleUseClaims::claim_id(ClaimKind::key_retrieval, "ab12"),
            (store::ClaimId{store::ClaimContainer::single_use, "key_retrieval", "ab12"}));
  EXPECT_EQ(SingleUseClaims::claim_id(ClaimKind::idempotency_key, "ab12"),
            (store::ClaimId{store::ClaimContainer::idempotency_key, "", "ab12"}));
}

}  // namespace
}  // namespace ca::authority
