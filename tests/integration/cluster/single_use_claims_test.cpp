// Single-use tokens across two instances (a master and a clone, each with its own real slapd,
// replicating multi-provider): an enrollment code, an Idempotency-Key and the retrieval of a
// recovered key are each spent in their home directory. With that directory frozen (SIGSTOP of its
// slapd) the other instance refuses the token (503) and writes nothing; once it is resumed the
// token is spent there exactly once, and the instance whose directory is the home refuses it at
// once, before any record of the first spending could have replicated to it.
#include <signal.h>

#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "authority/cluster/single_use_claims.hpp"
#include "authority/issuance/idempotency.hpp"
#include "store/ldap/replication.hpp"
#include "support/ca_cluster_fixture.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCodes = "ou=enrollmentCodes,ou=ca,o=pki-ca";
const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRecoveries = "ou=recoveryRequests,ou=kra,o=pki-ca";
const std::string kKeys = "ou=keyRepository,ou=kra,o=pki-ca";

const std::string kProfiles = std::string(kTestProfiles) + R"(
archivedUserCert:
  name: Encryption certificate with its key archived
  auth: none
  validity_days: 365
  subject: {require_cn: true, allowed_attributes: [O, CN]}
  san: {dns: false, ip: false, email: true, copy_cn_to_dns: false}
  key_usage: [keyEncipherment, digitalSignature]
  extended_key_usage: [emailProtection]
  archival: {server_keygen: true, client_keys: true, key_type: ec-p256, recovery_approvals: 1}
)";

// SIGSTOP of a slapd by its PID now, SIGCONT when the guard goes (also when an assertion fails first).
class FrozenDirectory {
 public:
  explicit FrozenDirectory(const CaServer& server) {
    std::istringstream in(read_file(server.dir() / "slapd" / "slapd.pid"));
    in >> pid_;
    stopped_ = pid_ > 0 && ::kill(pid_, SIGSTOP) == 0;
  }
  ~FrozenDirectory() { resume(); }
  FrozenDirectory(const FrozenDirectory&) = delete;
  FrozenDirectory& operator=(const FrozenDirectory&) = delete;
  bool stopped() const { return stopped_; }
  void resume() {
    if (stopped_) ::kill(pid_, SIGCONT);
    stopped_ = false;
  }

 private:
  pid_t pid_ = 0;
  bool stopped_ = false;
};

class SingleUseClaimsClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new CaCluster(CaClusterOptions{.profiles_yaml = kProfiles});
    error_ = new std::string(cluster_->build(1));
    if (!error_->empty()) return;
    // A second person to approve recoveries the first agent asks for.
    auto added = shell(fmt::format("{} agent add --config {} --subject 'CN=Approving Agent,O=Example' --out {}",
                                   ca_server_binary().string(), master().config_file().string(),
                                   (cluster_->work.path() / "approver").string()));
    if (added.exit_code != 0) *error_ = "agent add: " + added.output;
    for (const auto& e : std::filesystem::directory_iterator(cluster_->work.path() / "approver")) {
      if (e.path().extension() == ".pem") approver_cert_ = e.path().string();
      if (e.path().extension() == ".key") approver_key_ = e.path().string();
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete error_;
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  static CaServer& master() { return *cluster_->master; }
  static CaServer& clone() { return *cluster_->clones.at(0); }
  std::string path(const std::string& name) const { return (cluster_->work.path() / name).string(); }
  std::string agent() const {
    return fmt::format("--cert {} --key {}", master().agent_cert().string(), master().agent_key().string());
  }
  // POST with real curl; the status, the body in `out`.
  int post(const CaServer& s, const std::string& target, const std::string& json, const std::string& options = "",
           const std::string& out = "reply") {
    write_file(path("body.json"), json);
    auto r =
        shell(fmt::format("curl -s --cacert {} {} -H 'Content-Type: application/json' --data-binary @{} -o {} "
                          "-w '%{{http_code}}' '{}{}'",
                          master().ca_file().string(), options, path("body.json"), path(out), s.https_url(), target));
    try {
      return std::stoi(r.output);
    } catch (...) {
      return -1;
    }
  }
  std::string reply(const std::string& name = "reply") const { return read_file(cluster_->work.path() / name); }
  static bool eventually(const std::function<bool()>& what, int seconds = 30) {
    for (int i = 0; i < seconds * 10; ++i) {
      if (what()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  // The registered directories (read with the real ldapsearch).
  std::vector<store::ReplicaRecord> registry() {
    auto r =
        shell(fmt::format("ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b 'ou=replica,o=pki-ca' "
                          "'(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))' caReplicaId caInstanceId "
                          "caDirectoryUrl",
                          master().ldap_url(), master().bind_dn(), master().password_file().string()));
    std::vector<store::ReplicaRecord> out;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("dn: "))
        out.emplace_back();
      else if (line.starts_with("caReplicaId: "))
        out.back().replica_id = std::stoi(line.substr(13));
      else if (line.starts_with("caInstanceId: "))
        out.back().instance_id = line.substr(14);
      else if (line.starts_with("caDirectoryUrl: "))
        out.back().directory_url = line.substr(16);
    }
    EXPECT_EQ(out.size(), 2u) << r.output;
    return out;
  }
  std::optional<store::ReplicaRecord> registered(const std::string& instance_id) {
    for (auto& r : registry())
      if (r.instance_id == instance_id) return r;
    ADD_FAILURE() << instance_id << " is not registered";
    return std::nullopt;
  }
  // The instance whose directory is the home of a token, as every instance computes it.
  CaServer& home_of(authority::ClaimKind kind, const std::string& token_id) {
    const auto registry = this->registry();
    auto home = authority::claim_home(kind, token_id, registry);
    EXPECT_TRUE(home);
    for (const auto& entry : registry)
      if (home && entry.replica_id == home->replica_id && entry.instance_id == "master") return master();
    return clone();
  }
  CaServer& other_than(const CaServer& s) { return &s == &master() ? clone() : master(); }
  int certificates_for(const CaServer& s, const std::string& cn) {
    return s.count_entries(kCerts, fmt::format("(caSubjectDN=*CN={}*)", cn));
  }

  static CaCluster* cluster_;
  static std::string* error_;
  static inline std::string approver_cert_, approver_key_;
};
CaCluster* SingleUseClaimsClusterTest::cluster_ = nullptr;
std::string* SingleUseClaimsClusterTest::error_ = nullptr;

TEST_F(SingleUseClaimsClusterTest, ATokenWhoseHomeIsFrozenIsRefusedThenSpentOnceAfterTheResume) {
  // Both instances know both directories, and have re-read the registry since (every 2 s).
  ASSERT_TRUE(eventually([&] {
    return master().count_entries("ou=replica,o=pki-ca", "(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))") == 2 &&
           clone().count_entries("ou=replica,o=pki-ca", "(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))") == 2;
  })) << master().log();
  std::this_thread::sleep_for(std::chrono::seconds(3));

  // What the three tokens guard, made while every directory answers.
  ASSERT_EQ(post(master(), "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caServerCert"})", agent()), 201)
      << reply();
  const std::string code = json_field(reply(), "enrollment_code");
  const std::string code_id = code.substr(0, code.find('.'));
  ASSERT_EQ(post(master(), "/ca/rest/certrequests",
                 R"({"profile_id":"archivedUserCert","server_keygen":true,"subject":"CN=carol,O=Example",)"
                 R"("emails":["carol@example.com"],"pkcs12_password":"generated-pass"})"),
            201)
      << reply();
  const std::string serial = json_field(reply(), "serial");
  ASSERT_TRUE(eventually([&] { return clone().count_entries(kKeys, "(caKeyOwner=*CN=carol*)") == 1; }));
  ASSERT_EQ(post(master(), "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", serial), agent()), 201)
      << reply();
  const std::string recovery_id = json_field(reply(), "recovery_id");
  ASSERT_EQ(post(master(), "/kra/rest/agent/recoveries/" + recovery_id + "/approve", "",
                 fmt::format("--cert {} --key {}", approver_cert_, approver_key_)),
            200)
      << reply();
  const std::string idempotency_key = "single-use-claims-1";
  const std::string keyed_csr = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                                  "-keyout {0}.key -subj '/CN=keyed.example.com' "
                                                  "2>/dev/null",
                                                  path("keyed")))
                                    .output;
  const std::string keyed_body = fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(keyed_csr));
  const std::string code_body = fmt::format(
      R"({{"profile_id":"caServerCert","enrollment_code":"{}","csr":"{}"}})", code,
      json_escape(
          shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}.key "
                            "-subj '/CN=coded.example.com' 2>/dev/null",
                            path("coded")))
              .output));
  for (auto* s : cluster_->all()) {
    ASSERT_TRUE(eventually(
        [&] { return s->count_entries(kCodes, fmt::format("(&(cn={})(caCodeState=unused))", code_id)) == 1; }));
    ASSERT_TRUE(eventually([&] {
      return s->count_entries(kRecoveries, fmt::format("(&(cn={})(caRequestState=approved))", recovery_id)) == 1;
    }));
  }

  // Each token, asked for on the instance whose directory is NOT its home while the home is frozen.
  struct Token {
    std::string what;
    authority::ClaimKind kind;
    std::string id;
    std::function<int(const CaServer&)> spend;
    std::function<bool(const CaServer&)> unspent;  // what a refusal must leave as it was
  };
  const std::string retrieve = "/kra/rest/agent/recoveries/" + recovery_id + "/retrieve";
  const std::vector<Token> tokens{
      {"enrollment code", authority::ClaimKind::enrollment_code, code_id,
       [&](const CaServer& s) { return post(s, "/ca/rest/certrequests", code_body); },
       [&](const CaServer& s) {
         return s.count_entries(kCodes, fmt::format("(&(cn={})(caCodeState=unused))", code_id)) == 1 &&
                certificates_for(s, "coded.example.com") == 0;
       }},
      {"Idempotency-Key", authority::ClaimKind::idempotency_key, authority::IdempotencyKeys::digest(idempotency_key),
       [&](const CaServer& s) {
         return post(s, "/ca/rest/certrequests", keyed_body, fmt::format("-H 'Idempotency-Key: {}'", idempotency_key));
       },
       [&](const CaServer& s) { return certificates_for(s, "keyed.example.com") == 0; }},
      {"key retrieval", authority::ClaimKind::key_retrieval, recovery_id,
       [&](const CaServer& s) { return post(s, retrieve, R"({"password":"recovered-pass"})", agent()); },
       [&](const CaServer& s) {
         return s.count_entries(kRecoveries, fmt::format("(&(cn={})(caRequestState=approved))", recovery_id)) == 1;
       }},
  };
  for (const auto& token : tokens) {
    SCOPED_TRACE(token.what);
    CaServer& home = home_of(token.kind, token.id);
    CaServer& other = other_than(home);
    {
      FrozenDirectory frozen(home);
      ASSERT_TRUE(frozen.stopped());
      const auto asked = std::chrono::steady_clock::now();
      EXPECT_EQ(token.spend(other), 503) << reply();
      EXPECT_NE(reply().find("home directory of this"), std::string::npos) << reply();
      EXPECT_NE(reply().find("cannot be reached"), std::string::npos) << reply();
      const auto refused_after = std::chrono::steady_clock::now() - asked;
      EXPECT_LT(refused_after, std::chrono::seconds(5));
      std::cout << token.what << " refused after "
                << std::chrono::duration_cast<std::chrono::milliseconds>(refused_after).count() << " ms\n";
    }
    // Nothing was spent where the refusal was given, nor (replicated) at the home.
    EXPECT_TRUE(token.unspent(other));
    EXPECT_TRUE(token.unspent(home));

    // Resumed: granted once on the other instance, then refused at the home straight away. The
    // home first works off what queued up while it was frozen; a client is told to retry a
    // request that did not finish in time (503), and such a request spends nothing (the claim is
    // given back, the recovery's state set back), so the test retries it as a client would.
    ASSERT_TRUE(
        eventually([&] { return home.count_entries("ou=replica,o=pki-ca", "(objectClass=caReplicaInstance)") == 2; }));
    int granted = token.spend(other);
    for (int retry = 0; retry < 2 && granted == 503 && reply().find("retry") != std::string::npos; ++retry) {
      std::cout << token.what << ": 503 after the resume (" << reply() << "), retried\n";
      granted = token.spend(other);
    }
    EXPECT_TRUE(granted == 200 || granted == 201) << granted << " " << reply() << "\n" << other.log();
    const std::string first = reply();
    // The claim is in the home directory (written there by the other instance).
    if (token.kind == authority::ClaimKind::idempotency_key)
      EXPECT_EQ(
          home.count_entries("ou=idempotencyKeys,o=pki-ca", fmt::format("(&(cn={})(caCodeState=done))", token.id)), 1);
    else
      EXPECT_EQ(home.count_entries(
                    "ou=singleUseClaims,o=pki-ca",
                    fmt::format("(&(cn={}-{})(caCodeState=spent))", authority::claim_kind_name(token.kind), token.id)),
                1);
    const int again = token.spend(home);
    switch (token.kind) {
      case authority::ClaimKind::enrollment_code:
        EXPECT_EQ(again, 403) << reply();
        EXPECT_NE(reply().find("already used"), std::string::npos) << reply();
        break;
      case authority::ClaimKind::idempotency_key:
        // The same key gets the first answer (the same certificate), never a second certificate.
        EXPECT_EQ(again, 201) << reply();
        EXPECT_EQ(json_field(reply(), "serial"), json_field(first, "serial"));
        break;
      case authority::ClaimKind::key_retrieval:
        // Refused by the claim, or by the record's state if it replicated first.
        EXPECT_EQ(again, 409) << reply();
        EXPECT_NE(reply().find("retrieved"), std::string::npos) << reply();
        break;
    }
  }
  // One certificate per token in every directory once replication caught up.
  for (auto* s : cluster_->all()) {
    EXPECT_TRUE(eventually([&] { return certificates_for(*s, "coded.example.com") == 1; })) << s->https_url();
    EXPECT_TRUE(eventually([&] { return certificates_for(*s, "keyed.example.com") == 1; })) << s->https_url();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(certificates_for(*s, "coded.example.com"), 1);
    EXPECT_EQ(certificates_for(*s, "keyed.example.com"), 1);
  }
}

// The clone's replication account in the master's directory: it writes claims there, and only claims.
TEST_F(SingleUseClaimsClusterTest, AReplicationAccountWritesClaimsInAnotherDirectoryAndNothingElse) {
  ASSERT_TRUE(eventually([&] {
    return master().count_entries("ou=replica,o=pki-ca", "(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))") == 2;
  }));
  const auto clone_entry = registered("clone1");
  const auto master_entry = registered("master");
  ASSERT_TRUE(clone_entry && master_entry);
  auto add_as_clone = [&](const std::string& dn, const std::string& attributes) {
    write_file(path("entry.ldif"), fmt::format("dn: {}\n{}", dn, attributes));
    return shell(fmt::format("LDAPTLS_CACERT={} ldapadd -x -H '{}' -D '{}' -y {} -f {} 2>&1",
                             master().ca_file().string(), master_entry->directory_url,
                             store::replication_account_dn("o=pki-ca", clone_entry->replica_id),
                             (clone().dir() / "secrets" / "replication.pass").string(), path("entry.ldif")));
  };
  auto claim = add_as_clone("cn=enrollment_code-probe,ou=singleUseClaims,o=pki-ca",
                            "objectClass: caIdempotencyClaim\ncn: enrollment_code-probe\n"
                            "caRequestDigest: enrollment_code:probe\ncaCodeState: spent\ncaClaimNonce: probe\n"
                            "caExpiresAt: 20991231000000Z\n");
  EXPECT_EQ(claim.exit_code, 0) << claim.output;
  for (const std::string dn :
       {"ou=probe,ou=enrollmentCodes,ou=ca,o=pki-ca", "ou=probe,ou=recoveryRequests,ou=kra,o=pki-ca",
        "ou=probe,ou=replica,o=pki-ca", "ou=probe,ou=singleUseClaims,o=pki-ca"}) {
    auto refused = add_as_clone(dn, "objectClass: organizationalUnit\nou: probe\n");
    EXPECT_NE(refused.output.find("Insufficient access"), std::string::npos) << dn << ": " << refused.output;
  }
}

}  // namespace
}  // namespace ca::testing
