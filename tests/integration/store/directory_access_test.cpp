// The access rules of a CA directory (store/directory_access), checked the way an operator or an
// attacker holding a replication account would: ldapmodify and ldapsearch as that account,
// against real slapd servers.
#include "store/ldap/directory_access.hpp"

#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/child_process.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/replication.hpp"
#include "support/directory_fixture.hpp"

namespace ca::store {
namespace {

using testing::TestDirectory;

constexpr int kInsufficientAccess = 50;  // the LDAP result code; ldapmodify exits with it
const std::string kDatabase = "olcDatabase={1}mdb,cn=config";

struct Account {
  int replica_id;
  std::string password;
};

// A join token (with its secret's hash) and an archived key (with its wrapped private key).
void add_secrets(const TestDirectory& d) {
  const DirectoryLayout layout{d.suffix()};
  auto admin = LdapConnection::open(d.endpoint());
  ASSERT_TRUE(admin) << admin.error().message;
  Status folder =
      (*admin)->add(layout.join_tokens(), {{"objectClass", {"organizationalUnit"}}, {"ou", {"joinTokens"}}});
  ASSERT_TRUE(folder || folder.error().is(ErrorCode::conflict)) << folder.error().message;
  ASSERT_TRUE((*admin)->add(layout.join_token_dn("t1"), {{"objectClass", {"caJoinToken"}},
                                                         {"cn", {"t1"}},
                                                         {"caSecretHash", {"sha256$00$11"}},
                                                         {"caCodeState", {"unused"}},
                                                         {"caExpiresAt", {"20991231000000Z"}}}));
  ASSERT_TRUE((*admin)->add(layout.key_dn("k1"), {{"objectClass", {"caKeyRecord"}},
                                                  {"cn", {"k1"}},
                                                  {"caKeyId", {"k1"}},
                                                  {"caKeyOwner", {"somebody"}},
                                                  {"caWrappedPrivateKey", {"wrapped"}}}));
}

class DirectoryAccessTest : public ::testing::Test {
 protected:
  TestDirectory directory{1};
  std::string suffix = directory.suffix();
  Account one{1, "password-of-one"};
  Account two{2, "password-of-two"};

  void SetUp() override {
    auto admin = open(directory);
    ASSERT_TRUE(put_replication_account(*admin, suffix, one.replica_id, one.password));
    ASSERT_TRUE(put_replication_account(*admin, suffix, two.replica_id, two.password));
  }

  static std::unique_ptr<LdapConnection> open(const TestDirectory& d) {
    auto c = LdapConnection::open(d.endpoint());
    EXPECT_TRUE(c) << c.error().message;
    return c ? std::move(*c) : nullptr;
  }
  std::string dn_of(const Account& a) const { return replication_account_dn(suffix, a.replica_id); }
  std::string claim_dn(const std::string& name) const {
    return fmt::format("cn={},ou=singleUseClaims,{}", name, suffix);
  }
  std::string key_dn(const std::string& name) const { return fmt::format("cn={},ou=idempotencyKeys,{}", name, suffix); }

  // ldapmodify as `account` (simple bind over TCP); returns its exit code, the LDAP result code.
  int ldapmodify(const Account& account, const std::string& ldif, const TestDirectory* at = nullptr) const {
    const auto& d = at ? *at : directory;
    auto run =
        run_command({"ldapmodify", "-x", "-H", d.slapd->tcp_url(), "-D", dn_of(account), "-w", account.password}, ldif);
    EXPECT_TRUE(run) << run.error().message;
    if (!run) return -1;
    if (run->exit_code != 0) std::cerr << "ldapmodify: " << run->output;
    return run->exit_code;
  }
  // ldapsearch as `account` (nullptr: anonymous); returns its exit code and output.
  CommandResult ldapsearch(const Account* account, const std::string& base,
                           const std::vector<std::string>& attrs) const {
    std::vector<std::string> argv{"ldapsearch", "-x", "-LLL", "-H", directory.slapd->tcp_url(), "-b", base};
    if (account) argv.insert(argv.end(), {"-D", dn_of(*account), "-w", account->password});
    argv.emplace_back("(objectClass=*)");
    argv.insert(argv.end(), attrs.begin(), attrs.end());
    auto run = run_command(argv);
    EXPECT_TRUE(run) << run.error().message;
    return run ? *run : CommandResult{};
  }

  // slapd checks the syntax of userCertificate: a record carries a real certificate.
  std::string real_der() const {
    testing::TempDir tmp;
    testing::shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t -keyout " +
                   (tmp / "k").string() + " -outform DER -out " + (tmp / "c.der").string());
    return testing::read_file(tmp / "c.der");
  }
  static std::string claim_ldif(const std::string& dn, const std::string& state, const std::string& nonce) {
    return fmt::format(
        "dn: {}\nchangetype: add\nobjectClass: caIdempotencyClaim\ncn: {}\ncaRequestDigest: enrollment_code:x\n"
        "caCodeState: {}\ncaClaimNonce: {}\ncaInstanceId: somebody\ncaExpiresAt: 20991231000000Z\n",
        dn, dn.substr(3, dn.find(',') - 3), state, nonce);
  }
  static std::string replace_ldif(const std::string& dn, const std::string& attribute, const std::string& value) {
    return fmt::format("dn: {}\nchangetype: modify\nreplace: {}\n{}: {}\n", dn, attribute, attribute, value);
  }
  static std::string delete_ldif(const std::string& dn) { return fmt::format("dn: {}\nchangetype: delete\n", dn); }
  // The hand-over of a claim to a new holder, as the claim code does it (compare-and-set of the nonce).
  static std::string take_over_ldif(const std::string& dn, const std::string& old_nonce, const std::string& nonce) {
    return fmt::format(
        "dn: {}\nchangetype: modify\ndelete: caClaimNonce\ncaClaimNonce: {}\n-\nadd: caClaimNonce\ncaClaimNonce: "
        "{}\n-\n"
        "replace: caInstanceId\ncaInstanceId: taker\n-\nreplace: caCreatedAt\ncaCreatedAt: 20260101000000Z\n",
        dn, old_nonce, nonce);
  }
};

TEST_F(DirectoryAccessTest, AReplicationAccountCannotWriteWhatItDoesNotOwn) {
  DirectoryLayout layout{suffix};
  const std::string certificate = layout.certificate_dn("0a");
  ASSERT_TRUE(open(directory)->add(certificate, {{"objectClass", {"caCertificateRecord"}},
                                                 {"cn", {"0a"}},
                                                 {"caSerialNumber", {"0a"}},
                                                 {"caCertStatus", {"VALID"}},
                                                 {"userCertificate;binary", {real_der()}}}));
  ASSERT_EQ(ldapmodify(one, claim_ldif(claim_dn("enrollment_code-of-one"), "spent", "n1")), 0);
  const std::string agents = fmt::format("cn=Certificate Manager Agents,ou=groups,{}", suffix);
  struct Case {
    std::string what;
    std::string ldif;
  };
  const Case cases[] = {
      {"revoke a certificate record", replace_ldif(certificate, "caCertStatus", "REVOKED")},
      {"join the agents group", fmt::format("dn: {}\nchangetype: modify\nadd: caGroupMember\ncaGroupMember: "
                                            "serial=0a;sha256=00\n",
                                            agents)},
      {"set another account's password", replace_ldif(dn_of(one), "userPassword", "chosen")},
      {"set its own password", replace_ldif(dn_of(two), "userPassword", "chosen")},
      {"move the serial range counter", replace_ldif(layout.certificates(), "caNextRange", "1000000")},
      {"un-spend another instance's claim",
       replace_ldif(claim_dn("enrollment_code-of-one"), "caCodeState", "released")},
      {"delete another instance's claim", delete_ldif(claim_dn("enrollment_code-of-one"))},
      {"add an account",
       fmt::format("dn: cn=replica-9,ou=replicators,{}\nchangetype: add\nobjectClass: applicationProcess\n"
                   "objectClass: simpleSecurityObject\ncn: replica-9\nuserPassword: x\n",
                   suffix)},
      {"add something else than a claim among the claims",
       fmt::format("dn: cn=other,ou=singleUseClaims,{}\nchangetype: add\nobjectClass: device\ncn: other\n", suffix)},
      {"rename the claims container", replace_ldif(fmt::format("ou=singleUseClaims,{}", suffix), "description", "x")},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(ldapmodify(two, c.ldif), kInsufficientAccess);
  }
  // Nothing changed.
  auto admin = open(directory);
  auto record = admin->read(certificate, {"caCertStatus"});
  ASSERT_TRUE(record && *record);
  EXPECT_EQ((*record)->first_or("caCertStatus"), "VALID");
  auto claim = admin->read(claim_dn("enrollment_code-of-one"), {"caCodeState"});
  ASSERT_TRUE(claim && *claim);
  EXPECT_EQ((*claim)->first_or("caCodeState"), "spent");
  auto group = admin->read(agents, {"caGroupMember"});
  ASSERT_TRUE(group && *group);
  EXPECT_FALSE((*group)->values("caGroupMember"));
  EXPECT_TRUE(LdapConnection::open(LdapEndpoint{directory.slapd->tcp_url(), dn_of(two), two.password, 3000}))
      << "its password changed";
}

TEST_F(DirectoryAccessTest, AReplicationAccountWritesTheClaimsItHoldsAndTakesOverOnlyAGivenBackOne) {
  const std::string dn = claim_dn("enrollment_code-abc");
  ASSERT_EQ(ldapmodify(two, claim_ldif(dn, "spent", "n2")), 0);
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn, "caModifiedAt", "20260101000000Z")), 0);
  EXPECT_EQ(ldapmodify(one, take_over_ldif(dn, "n2", "n1")), kInsufficientAccess) << "a spent claim was taken";
  // Given back by its holder, anyone may take it over, and then it is the taker's.
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn, "caCodeState", "released")), 0);
  EXPECT_EQ(ldapmodify(one, take_over_ldif(dn, "n2", "n1") + "-\nreplace: caCodeState\ncaCodeState: spent\n"), 0);
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn, "caCodeState", "released")), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(two, delete_ldif(dn)), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(one, delete_ldif(dn)), 0);
  // The released state does not open anything but the hand-over's attributes.
  ASSERT_EQ(ldapmodify(two, claim_ldif(dn, "released", "n3")), 0);
  EXPECT_EQ(ldapmodify(one, replace_ldif(dn, "caRequestDigest", "enrollment_code:other")), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(one, delete_ldif(dn)), kInsufficientAccess);
}

TEST_F(DirectoryAccessTest, AnIdempotencyKeyClaimIsTakenOverOnlyWhilePendingAndItsAnswerWrittenOnlyByItsHolder) {
  const std::string dn = key_dn("0123abcd");
  ASSERT_EQ(ldapmodify(two, claim_ldif(dn, "pending", "n2")), 0);
  EXPECT_EQ(ldapmodify(one, replace_ldif(dn, "caStoredResponse", "200 forged")), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(one, delete_ldif(dn)), kInsufficientAccess);
  // A stale pending claim is taken over (the ACL cannot see its age); the taker holds it then.
  EXPECT_EQ(ldapmodify(one, take_over_ldif(dn, "n2", "n1")), 0);
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn, "caStoredResponse", "200 forged")), kInsufficientAccess);
  const std::string done = "dn: " + dn +
                           "\nchangetype: modify\nreplace: caCodeState\ncaCodeState: done\n-\n"
                           "replace: caStoredResponse\ncaStoredResponse: 201 created\n";
  EXPECT_EQ(ldapmodify(one, done), 0);
  // Answered: nobody else may take it over any more.
  EXPECT_EQ(ldapmodify(two, take_over_ldif(dn, "n1", "n2")), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(one, delete_ldif(dn)), 0);
}

TEST_F(DirectoryAccessTest, AReplicationAccountReadsTheEntriesButNoHashAndAnonymousOnlyBinds) {
  add_secrets(directory);
  const DirectoryLayout layout{suffix};
  // The entries themselves: yes (claims, lag checks and status read the tree as this account) ...
  auto token = ldapsearch(&two, layout.join_token_dn("t1"), {"*"});
  EXPECT_EQ(token.exit_code, 0) << token.output;
  EXPECT_NE(token.output.find("caCodeState: unused"), std::string::npos) << token.output;
  auto key = ldapsearch(&two, layout.key_dn("k1"), {"*"});
  EXPECT_NE(key.output.find("caKeyOwner: somebody"), std::string::npos) << key.output;
  // ... no hash: not another account's password, not its own, not a secret, not a wrapped key,
  // not even when named.
  for (const auto& [base, attribute] :
       std::vector<std::pair<std::string, std::string>>{{dn_of(one), "userPassword"},
                                                        {dn_of(two), "userPassword"},
                                                        {layout.join_token_dn("t1"), "caSecretHash"},
                                                        {layout.key_dn("k1"), "caWrappedPrivateKey"}}) {
    SCOPED_TRACE(base + " " + attribute);
    auto named = ldapsearch(&two, base, {attribute});
    EXPECT_EQ(named.exit_code, 0) << named.output;
    EXPECT_EQ(named.output.find(attribute + ":"), std::string::npos) << named.output;
    auto all = ldapsearch(&two, base, {"*"});
    EXPECT_EQ(all.output.find(attribute + ":"), std::string::npos) << all.output;
    // Nor can it test a guess with a filter on the attribute.
    auto guess = run_command({"ldapsearch", "-x", "-LLL", "-H", directory.slapd->tcp_url(), "-D", dn_of(two), "-w",
                              two.password, "-b", base, "-s", "base", fmt::format("({}=*)", attribute), "1.1"});
    ASSERT_TRUE(guess);
    EXPECT_EQ(guess->output.find("dn:"), std::string::npos) << guess->output;
  }
  // A directory peer reads them (what replication needs).
  auto admin = open(directory);
  ASSERT_TRUE(add_directory_peer(*admin, suffix, dn_of(one)));
  auto as_peer = ldapsearch(&one, layout.join_token_dn("t1"), {"caSecretHash"});
  EXPECT_NE(as_peer.output.find("caSecretHash: sha256$"), std::string::npos) << as_peer.output;
  auto peer_password = ldapsearch(&one, dn_of(two), {"userPassword"});
  EXPECT_NE(peer_password.output.find("userPassword:: "), std::string::npos) << peer_password.output;

  auto anonymous = ldapsearch(nullptr, suffix, {"*"});
  EXPECT_EQ(anonymous.output.find("dn:"), std::string::npos) << anonymous.output;
  auto anonymous_account = ldapsearch(nullptr, dn_of(one), {"userPassword"});
  EXPECT_EQ(anonymous_account.output.find("userPassword"), std::string::npos) << anonymous_account.output;
  // ... but binds (auth on userPassword).
  EXPECT_TRUE(LdapConnection::open(LdapEndpoint{directory.slapd->tcp_url(), dn_of(one), one.password, 3000}));
  // The directory peers are the directory's own to manage: an account cannot join them.
  EXPECT_EQ(ldapmodify(two, fmt::format("dn: {}\nchangetype: modify\nadd: member\nmember: {}\n",
                                        directory_peers_dn(suffix), dn_of(two))),
            kInsufficientAccess);
}

TEST_F(DirectoryAccessTest, TheRulesOfAnEarlierVersionAreReplacedOnceAtStart) {
  auto config = LdapConnection::open(directory.slapd->config_endpoint());
  ASSERT_TRUE(config) << config.error().message;
  // What an earlier version set: the replication accounts write every claim.
  const std::string replicators = fmt::format("dn.children=\"ou=replicators,{}\"", suffix);
  const std::vector<std::string> earlier{
      fmt::format("{{0}}to attrs=userPassword by {} read by anonymous auth by * none", replicators),
      fmt::format("{{1}}to dn.subtree=\"ou=singleUseClaims,{}\" by {} write by * none", suffix, replicators),
      fmt::format("{{2}}to * by {} read by * none", replicators)};
  ASSERT_TRUE((*config)->modify(kDatabase, {{LdapModification::Op::replace, "olcAccess", earlier}}));
  ASSERT_EQ(ldapmodify(one, claim_ldif(claim_dn("enrollment_code-old"), "spent", "n1")), 0);
  ASSERT_EQ(ldapmodify(two, replace_ldif(claim_dn("enrollment_code-old"), "caCodeState", "released")), 0);

  // The next start replaces them, once.
  directory.slapd->stop();
  ASSERT_TRUE(directory.slapd->start(false));
  auto reopened = LdapConnection::open(directory.slapd->config_endpoint());
  ASSERT_TRUE(reopened) << reopened.error().message;
  auto rules = (*reopened)->read(kDatabase, {"olcAccess"});
  ASSERT_TRUE(rules && *rules);
  ASSERT_TRUE((*rules)->values("olcAccess"));
  EXPECT_EQ((*rules)->values("olcAccess")->size(), directory.slapd->access_rules().size());
  auto again = apply_directory_access(**reopened, kDatabase, directory.slapd->access_rules());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(*again) << "the rules were written again";
  // And they hold: the claim of one (the last writer was two) is two's now, not one's.
  EXPECT_EQ(ldapmodify(one, replace_ldif(claim_dn("enrollment_code-old"), "caModifiedAt", "20260101000000Z")),
            kInsufficientAccess);
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn_of(two), "userPassword", "chosen")), kInsufficientAccess);
}

// Under the rules, replication still carries everything (the accounts' passwords included), and a
// claim's holder is the same in every directory: modifiersName replicates with the entry.
TEST_F(DirectoryAccessTest, ReplicationCarriesTheAccountsAndTheHoldersOfClaims) {
  TestDirectory second{2, false, false};
  // A plain agreement binds with an account, made a directory peer by the operator.
  ASSERT_TRUE(add_directory_peer(*open(directory), suffix, dn_of(two)));
  ASSERT_TRUE(put_replication_peer(second.slapd->config_endpoint(),
                                   {1, directory.slapd->url(), dn_of(two), two.password}, suffix));
  const std::string dn = claim_dn("enrollment_code-replicated");
  ASSERT_EQ(ldapmodify(two, claim_ldif(dn, "spent", "n2")), 0);
  auto admin = open(second);
  bool arrived = false;
  for (int i = 0; i < 200 && !arrived; ++i) {
    auto e = admin->read(dn, {"cn"});
    arrived = e && e->has_value();
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(arrived) << "the claim did not replicate";
  // The other account replicated with its password: it binds to the second directory.
  EXPECT_TRUE(LdapConnection::open(LdapEndpoint{second.slapd->tcp_url(), dn_of(one), one.password, 3000}));
  EXPECT_EQ(ldapmodify(one, replace_ldif(dn, "caCodeState", "released"), &second), kInsufficientAccess);
  EXPECT_EQ(ldapmodify(two, replace_ldif(dn, "caCodeState", "released"), &second), 0);
}

// What ca-server sets up: each directory binds to its peer with its own TLS certificate (SASL
// EXTERNAL). It replicates everything, hashes included, while its subject is a directory peer; a
// certificate of the same CA that is not one reads nothing; and the account reads no hash.
TEST(DirectoryPeerTest, ADirectoryReplicatesEverythingWithItsCertificateOnlyWhileItIsAPeer) {
  testing::TempDir pki{"ca-pki"};
  const auto make = [&](const std::string& name, const std::string& subject) {
    const auto r = testing::shell(fmt::format(
        "cd {0} && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout {1}.key -out {1}.csr "
        "-subj '{2}' 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > "
        "{1}.ext && "
        "openssl x509 -req -in {1}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out {1}.pem -extfile {1}.ext "
        "2>&1",
        pki.path().string(), name, subject));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return testing::DirectoryTls{pki / (name + ".pem"), pki / (name + ".key"), pki / "ca.pem"};
  };
  ASSERT_EQ(testing::shell(fmt::format("cd {} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                                       "-keyout ca.key -out ca.pem -subj '/O=Example/CN=Test CA' -days 2 2>&1",
                                       pki.path().string()))
                .exit_code,
            0);
  const auto tls_one = make("one", "/O=Example/CN=Directory one");
  const auto tls_two = make("two", "/O=Example/CN=Directory two");
  const auto outsider = make("three", "/O=Example/CN=Directory three");
  TestDirectory first{1, false, true, &tls_one};
  TestDirectory second{2, false, false, &tls_two};
  const std::string suffix = first.suffix();
  const DirectoryLayout layout{suffix};
  {
    auto admin = LdapConnection::open(first.endpoint());
    ASSERT_TRUE(admin) << admin.error().message;
    ASSERT_TRUE(put_replication_account(**admin, suffix, 2, "password-of-two"));
    ASSERT_TRUE(add_directory_peer(**admin, suffix, "CN=Directory two,O=Example"));
  }
  add_secrets(first);

  // ldapsearch over ldaps as a certificate (SASL EXTERNAL) or an account.
  const auto search_as_certificate = [&](const testing::DirectoryTls& who, const std::string& base) {
    return testing::shell(fmt::format(
        "LDAPTLS_CACERT={} LDAPTLS_CERT={} LDAPTLS_KEY={} ldapsearch -Q -Y EXTERNAL -LLL -o ldif-wrap=no -H {} -b '{}' "
        "'(objectClass=*)' '*' 2>&1",
        who.ca_file.string(), who.cert_file.string(), who.key_file.string(), first.slapd->tcp_url(), base));
  };
  auto as_peer = search_as_certificate(tls_two, layout.join_token_dn("t1"));
  EXPECT_NE(as_peer.output.find("caSecretHash: sha256$00$11"), std::string::npos) << as_peer.output;
  auto as_outsider = search_as_certificate(outsider, suffix);
  EXPECT_EQ(as_outsider.output.find("dn:"), std::string::npos) << as_outsider.output;
  auto as_account = testing::shell(fmt::format(
      "LDAPTLS_CACERT={} ldapsearch -x -LLL -H {} -D '{}' -w password-of-two -b '{}' '(objectClass=*)' '*' 2>&1",
      tls_two.ca_file.string(), first.slapd->tcp_url(), replication_account_dn(suffix, 2), layout.join_token_dn("t1")));
  EXPECT_NE(as_account.output.find("caCodeState: unused"), std::string::npos) << as_account.output;
  EXPECT_EQ(as_account.output.find("caSecretHash"), std::string::npos) << as_account.output;

  // The second directory consumes from the first with its certificate: everything arrives whole.
  ReplicationPeer peer{1,
                       first.slapd->tcp_url(),
                       {},
                       {},
                       tls_two.ca_file.string(),
                       tls_two.cert_file.string(),
                       tls_two.key_file.string()};
  ASSERT_TRUE(put_replication_peer(second.slapd->config_endpoint(), peer, suffix));
  auto on_second = LdapConnection::open(second.endpoint());
  ASSERT_TRUE(on_second) << on_second.error().message;
  std::optional<LdapEntry> token;
  for (int i = 0; i < 200 && !token; ++i) {
    auto e = (*on_second)->read(layout.join_token_dn("t1"), {"caSecretHash"});
    if (e && *e)
      token = **e;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(token) << "the join token did not replicate";
  EXPECT_EQ(token->first_or("caSecretHash"), "sha256$00$11");
  auto key = (*on_second)->read(layout.key_dn("k1"), {"caWrappedPrivateKey"});
  ASSERT_TRUE(key && *key);
  EXPECT_EQ((*key)->first_or("caWrappedPrivateKey"), "wrapped");
  // The account's password came too: it binds to the second directory.
  EXPECT_TRUE(LdapConnection::open(LdapEndpoint{second.slapd->tcp_url(), replication_account_dn(suffix, 2),
                                                "password-of-two", 3000, tls_two.ca_file.string()}));
  // The agreement reads back as one that binds with the certificate (no password in it).
  auto agreements = replication_peers(second.slapd->config_endpoint());
  ASSERT_TRUE(agreements && agreements->size() == 1u);
  EXPECT_TRUE(agreements->front().binds_with_certificate());
  EXPECT_EQ(agreements->front().tls_cert_file, tls_two.cert_file.string());
  EXPECT_TRUE(agreements->front().password.empty());

  // Out of the group (a retired instance), the certificate reads nothing any more.
  {
    auto admin = LdapConnection::open(first.endpoint());
    ASSERT_TRUE(admin);
    ASSERT_TRUE(remove_directory_peer(**admin, suffix, "CN=Directory two,O=Example"));
    ASSERT_TRUE(remove_directory_peer(**admin, suffix, "CN=Directory two,O=Example")) << "a second removal is a no-op";
    auto members = directory_peers(**admin, suffix);
    ASSERT_TRUE(members);
    EXPECT_TRUE(members->empty());
  }
  auto removed = search_as_certificate(tls_two, suffix);
  EXPECT_EQ(removed.output.find("dn:"), std::string::npos) << removed.output;
}

}  // namespace
}  // namespace ca::store
