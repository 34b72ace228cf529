// Trust between instances, against a live master: a join token registers one clone once, and
// not after its expiry; the directory's TCP port speaks TLS only, with a certificate of the CA;
// `ca-clone spawn` refuses a "master" whose certificate names another host before writing anything.
#include <filesystem>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/child_process.hpp"
#include "crypto/keys.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

std::string ca_clone() { return (fs::path(CA_BIN_DIR) / "ca-clone").string(); }

class InstanceTrustTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    master_ = new CaServer(CaServerOptions{.instance_id = "master"});
    auto init = master_->init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(master_->start()) << master_->log();
  }
  static void TearDownTestSuite() {
    delete master_;
    master_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(master_, nullptr); }

  // `ca-clone prepare`: a bundle and its join token; returns the token.
  std::string prepare(const std::string& name, const std::string& flags = "") {
    auto pass = write_file(work_.path() / "p12.pass", "trust-test\n");
    auto bundle = work_.path() / (name + ".p12");
    auto r = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {} {}", ca_clone(),
                               master_->config_file().string(), bundle.string(), pass.string(), flags));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto token_file = fs::path(bundle.string() + ".join-token");
    EXPECT_TRUE(fs::exists(token_file)) << r.output;
    EXPECT_EQ(fs::status(token_file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
    auto token = read_file(token_file);
    while (!token.empty() && token.back() == '\n') token.pop_back();
    return token;
  }
  // A registration as a new clone would send it (anonymous TLS, token + CSR).
  HttpReply register_with(const std::string& token, const std::string& instance_id) {
    auto key = crypto::generate_key(KeyType::ec_p256);
    EXPECT_TRUE(key);
    auto csr = crypto::make_csr_pem(key->get(), "CN=" + instance_id);
    EXPECT_TRUE(csr);
    return master_->client().post(
        "/ca/rest/admin/clones",
        fmt::format(R"({{"instance_id":"{}","url":"https://127.0.0.1:{}","join_token":"{}","subsystem_csr":"{}"}})",
                    instance_id, free_port(), token, json_escape(csr ? *csr : std::string())));
  }

  static CaServer* master_;
  TempDir work_{"ca-trust"};
};
CaServer* InstanceTrustTest::master_ = nullptr;

TEST_F(InstanceTrustTest, AJoinTokenRegistersOneCloneOnceAndNotAfterItsExpiry) {
  // The bundle carries no subsystem identity: the clone gets its own.
  std::string token = prepare("once");
  auto listing = shell(fmt::format("{} p12-find --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                                   (work_.path() / "once.p12").string(), (work_.path() / "p12.pass").string()));
  EXPECT_EQ(listing.exit_code, 0) << listing.output;
  EXPECT_EQ(listing.output.find("subsystemCert"), std::string::npos) << listing.output;
  // The directory holds a salted hash of the token, never the token.
  auto dump = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b 'ou=joinTokens,o=pki-ca'",
                                master_->ldap_url(), master_->bind_dn(), master_->password_file().string()));
  EXPECT_EQ(dump.output.find(token.substr(token.find('.') + 1)), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("caSecretHash: sha256$"), std::string::npos) << dump.output;

  // Without a token or a certificate: 401. With a wrong secret: 403.
  auto none = master_->client().post("/ca/rest/admin/clones", R"({"instance_id":"x","url":"https://127.0.0.1:1"})");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(register_with(token.substr(0, token.find('.') + 1) + std::string(32, '0'), "cloneA").status, 403);

  auto first = register_with(token, "cloneA");
  ASSERT_EQ(first.status, 201) << first.body;
  std::string pem = json_field(first.body, "subsystem_certificate");
  write_file(work_.path() / "cloneA.pem", pem);
  auto text = shell(fmt::format("openssl x509 -noout -subject -ext extendedKeyUsage -in {}", (work_.path() / "cloneA.pem").string()));
  EXPECT_NE(text.output.find("CN = Subsystem cloneA"), std::string::npos) << text.output;
  auto verify = shell(fmt::format("openssl verify -CAfile {} {}", master_->ca_file().string(), (work_.path() / "cloneA.pem").string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;

  auto again = register_with(token, "cloneB");
  EXPECT_EQ(again.status, 403) << again.body;
  EXPECT_NE(again.body.find("already used"), std::string::npos) << again.body;

  // A token cannot take over an instance that is registered already.
  std::string second = prepare("takeover");
  auto takeover = register_with(second, "cloneA");
  EXPECT_EQ(takeover.status, 409) << takeover.body;

  // A token bound to another clone ID, and an expired one, are refused.
  std::string bound = prepare("bound", "--clone-id cloneC");
  auto wrong_id = register_with(bound, "cloneD");
  EXPECT_EQ(wrong_id.status, 403) << wrong_id.body;
  EXPECT_NE(wrong_id.body.find("cloneC"), std::string::npos) << wrong_id.body;
  std::string expiring = prepare("late");
  std::string id = expiring.substr(0, expiring.find('.'));
  write_file(work_.path() / "expire.ldif", fmt::format("dn: cn={},ou=joinTokens,o=pki-ca\nchangetype: modify\n"
                                                       "replace: caExpiresAt\ncaExpiresAt: 20200101000000Z\n",
                                                       id));
  auto modified = shell(fmt::format("ldapmodify -x -H '{}' -D '{}' -y '{}' -f {}", master_->ldap_url(), master_->bind_dn(),
                                    master_->password_file().string(), (work_.path() / "expire.ldif").string()));
  ASSERT_EQ(modified.exit_code, 0) << modified.output;
  auto expired = register_with(expiring, "cloneE");
  EXPECT_EQ(expired.status, 403) << expired.body;
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
  // Values that would land in cn=config are checked.
  std::string fresh = prepare("values");
  EXPECT_EQ(register_with(fresh, "bad id").status, 400);
  auto bad_url = master_->client().post("/ca/rest/admin/clones",
                                        fmt::format(R"({{"instance_id":"cloneF","url":"https://h:1 rid=9","join_token":"{}"}})", fresh));
  EXPECT_EQ(bad_url.status, 400) << bad_url.body;
}

TEST_F(InstanceTrustTest, AdminEndpointsAcceptOnlyARegisteredInstancesOwnCertificate) {
  auto call = [&](const std::string& method, const std::string& target, const std::string& cert, const std::string& key) {
    std::string auth = cert.empty() ? "" : fmt::format("--cert {} --key {}", cert, key);
    std::string data = method == "POST" ? "-H 'Content-Type: application/json' -d '{\"directory_url\":\"ldaps://127.0.0.1:1/\"}'" : "";
    auto r = shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} {} -X {} {} '{}{}'",
                               master_->ca_file().string(), auth, method, data, master_->https_url(), target));
    return std::atoi(r.output.c_str());
  };
  const std::vector<std::pair<std::string, std::string>> endpoints{{"GET", "/ca/rest/admin/topology"},
                                                                   {"POST", "/ca/rest/admin/clones/7/replication"},
                                                                   {"DELETE", "/ca/rest/admin/clones/7"}};
  const std::string own_cert = (master_->dir() / "certs/subsystem.pem").string();
  const std::string own_key = (master_->dir() / "private/subsystem.key").string();
  for (const auto& [method, target] : endpoints) {
    SCOPED_TRACE(method + " " + target);
    EXPECT_EQ(call(method, target, "", ""), 401);  // anonymous
    // A certificate of this CA that is not an instance's (the agent's): 403.
    EXPECT_EQ(call(method, target, master_->agent_cert().string(), master_->agent_key().string()), 403);
  }
  // The master's own subsystem certificate is accepted.
  EXPECT_EQ(call("GET", "/ca/rest/admin/topology", own_cert, own_key), 200);
}

TEST_F(InstanceTrustTest, TheDirectoryPortSpeaksTlsOnlyWithACertificateOfTheCa) {
  const auto port = master_->directory_port();
  ASSERT_NE(port, 0);
  const std::string password = read_file(master_->password_file());
  // A plain LDAP bind to the port fails: nothing there speaks clear text.
  auto plain = shell(fmt::format("ldapsearch -LLL -x -o nettimeout=3 -H ldap://127.0.0.1:{} -D '{}' -y '{}' -b o=pki-ca -s base dn 2>&1",
                                 port, master_->bind_dn(), master_->password_file().string()));
  EXPECT_NE(plain.exit_code, 0) << plain.output;
  EXPECT_EQ(plain.output.find("dn: o=pki-ca"), std::string::npos) << plain.output;
  // ldaps with the CA's certificate demanded works, and the certificate names the host.
  auto tls = shell(fmt::format("LDAPTLS_CACERT={} LDAPTLS_REQCERT=demand ldapsearch -LLL -x -H ldaps://127.0.0.1:{} -D '{}' -y '{}' "
                               "-b o=pki-ca -s base dn 2>&1",
                               master_->ca_file().string(), port, master_->bind_dn(), master_->password_file().string()));
  EXPECT_EQ(tls.exit_code, 0) << tls.output;
  EXPECT_NE(tls.output.find("dn: o=pki-ca"), std::string::npos) << tls.output;
  auto peer = shell(fmt::format("openssl s_client -connect 127.0.0.1:{} -CAfile {} -verify_ip 127.0.0.1 -verify_return_error "
                                "</dev/null 2>&1",
                                port, master_->ca_file().string()));
  EXPECT_NE(peer.output.find("Verify return code: 0 (ok)"), std::string::npos) << peer.output;
  EXPECT_NE(peer.output.find("CN = Directory master"), std::string::npos) << peer.output;
  (void)password;
}

TEST_F(InstanceTrustTest, SpawnRefusesAMasterWhoseCertificateNamesAnotherHost) {
  // A certificate of the same CA, for another name, served by openssl s_server on 127.0.0.1.
  auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/other.key "
                             "-out {0}/other.csr -subj /CN=other.example.com 2>&1",
                             work_.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto issued = master_->client().post(
      "/ca/rest/certrequests",
      fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(read_file(work_.path() / "other.csr"))));
  ASSERT_EQ(issued.status, 201) << issued.body;
  write_file(work_.path() / "other.pem", json_field(issued.body, "certificate"));
  unsigned short port = free_port();
  auto impostor = ChildProcess::spawn({"/usr/bin/openssl", "s_server", "-accept", std::to_string(port), "-cert",
                                       (work_.path() / "other.pem").string(), "-key", (work_.path() / "other.key").string(),
                                       "-www", "-quiet"},
                                      work_.path() / "s_server.log", true);
  ASSERT_TRUE(impostor) << impostor.error().message;
  for (int i = 0; i < 100 && shell(fmt::format("bash -c 'echo > /dev/tcp/127.0.0.1/{}' 2>/dev/null", port)).exit_code != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));

  std::string token = prepare("impostor");
  (void)token;
  auto yaml = write_file(work_.path() / "clone.yaml",
                         fmt::format("clone:\n  master_url: https://127.0.0.1:{}\n  pkcs12_file: {}\n"
                                     "  pkcs12_password_file: {}\ninstance:\n  id: victim\n  dir: victim\n"
                                     "server:\n  port: {}\ndirectory:\n  port: {}\n",
                                     port, (work_.path() / "impostor.p12").string(), (work_.path() / "p12.pass").string(),
                                     free_port(), free_port()));
  auto spawn = shell(fmt::format("{} spawn --config {} --no-start 2>&1", ca_clone(), yaml.string()));
  EXPECT_EQ(spawn.exit_code, 1) << spawn.output;
  EXPECT_NE(spawn.output.find("TLS"), std::string::npos) << spawn.output;
  EXPECT_FALSE(fs::exists(work_.path() / "victim")) << "spawn wrote the clone's folder for an impostor";
  impostor->terminate(std::chrono::seconds(5));
}

}  // namespace
}  // namespace ca::testing
