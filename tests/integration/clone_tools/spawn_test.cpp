// ca-clone spawn failing early: a bad YAML, a bundle without the CA key, an unreachable master:
// nothing may be left behind. Against a live master: --dry-run changes nothing, and a spawn that
// stopped half-way (here: setup_replication: false, so no data arrives) is finished by a re-run
// under the same replica ID. (Clones that serve are exercised by tests/integration/cluster.)
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/config.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/replication.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

std::string ca_clone() { return (fs::path(CA_BIN_DIR) / "ca-clone").string(); }

class SpawnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    master_ = new CaServer(CaServerOptions{.instance_id = "master"});
    auto init = master_->init();  // made, not started: nobody answers on its port
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  static void TearDownTestSuite() {
    delete master_;
    master_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(master_, nullptr); }

  fs::path prepare(bool with_key) {
    auto pass = write_file(work_.path() / "p12.pass", "spawn-test\n");
    auto bundle = work_.path() / (with_key ? "full.p12" : "nokey.p12");
    auto r = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}{}", ca_clone(),
                               master_->config_file().string(), bundle.string(), pass.string(),
                               with_key ? "" : " --no-key"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return bundle;
  }
  fs::path clone_yaml(const fs::path& bundle, const std::string& extra = "") {
    return write_file(work_.path() / "clone.yaml",
                      fmt::format("clone:\n  master_url: https://127.0.0.1:{}\n  pkcs12_file: {}\n"
                                  "  pkcs12_password_file: {}\n{}instance:\n  id: clone1\n  dir: clone1\n"
                                  "server:\n  port: {}\ndirectory:\n  port: {}\n",
                                  master_->port(), bundle.string(), (work_.path() / "p12.pass").string(), extra,
                                  free_port(), free_port()));
  }
  Shell spawn(const fs::path& yaml, const std::string& flags = "") {
    return shell(fmt::format("{} spawn --config {} {} 2>&1", ca_clone(), yaml.string(), flags));
  }

  static CaServer* master_;
  TempDir work_{"ca-spawn"};
};
CaServer* SpawnTest::master_ = nullptr;

TEST_F(SpawnTest, AnUnreachableMasterIsAClearErrorAndNothingIsMade) {
  auto out = spawn(clone_yaml(prepare(true)));
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find("unreachable"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(work_.path() / "clone1")) << "a failed spawn left a folder behind";
}

TEST_F(SpawnTest, ABundleWithoutTheCaKeyIsRefused) {
  auto out = spawn(clone_yaml(prepare(false)));
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find("no CA signing key"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(work_.path() / "clone1"));
}

TEST_F(SpawnTest, ConfigurationMistakesAreUsageErrorsNamingTheKey) {
  auto bundle = prepare(true);
  auto unknown = spawn(clone_yaml(bundle, "  colour: blue\n"));
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("clone.colour"), std::string::npos) << unknown.output;

  auto no_clone = write_file(work_.path() / "plain.yaml", "instance:\n  id: x\n  dir: x\n");
  auto missing = spawn(no_clone);
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("'clone' section"), std::string::npos) << missing.output;

  auto bad_instance =
      write_file(work_.path() / "bad.yaml",
                 fmt::format("clone:\n  master_url: https://127.0.0.1:1\n  pkcs12_file: {}\n"
                             "  pkcs12_password_file: x\ninstance:\n  id: c\n  dir: c\nserver:\n  port: nope\n",
                             bundle.string()));
  auto typed = spawn(bad_instance, "--dry-run");
  EXPECT_EQ(typed.exit_code, 2) << typed.output;
  EXPECT_NE(typed.output.find("server.port"), std::string::npos) << typed.output;
  EXPECT_EQ(spawn(no_clone, "--help").exit_code, 0);
}

// A master that runs (real ca-server and slapd), for the spawns that get past step 1.
class SpawnFromALiveMasterTest : public ::testing::Test {
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

  fs::path clone_yaml(const std::string& extra, const std::string& instance_id = "clone1") {
    auto pass = write_file(work_.path() / "p12.pass", "spawn-test\n");
    auto bundle = work_.path() / "bundle.p12";
    if (!fs::exists(bundle)) {
      auto r = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                                 master_->config_file().string(), bundle.string(), pass.string()));
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
    if (directory_port_ == 0) directory_port_ = free_port();
    if (server_port_ == 0) server_port_ = free_port();
    return write_file(work_.path() / "clone.yaml",
                      fmt::format("clone:\n  master_url: {}\n  pkcs12_file: {}\n  pkcs12_password_file: {}\n{}"
                                  "instance:\n  id: {}\n  dir: clone1\nserver:\n  port: {}\n"
                                  "directory:\n  port: {}\n",
                                  master_->https_url(), bundle.string(), pass.string(), extra, instance_id,
                                  server_port_, directory_port_));
  }
  Shell spawn(const fs::path& yaml, const std::string& flags = "") {
    return shell(fmt::format("{} spawn --config {} {} 2>&1", ca_clone(), yaml.string(), flags));
  }
  // Replica entries in the master's directory (each registration claims one).
  int replicas() const { return master_->count_entries("ou=replica,o=pki-ca", "(objectClass=caReplicaInstance)"); }
  // Agreements in the master's directory, read from cn=config over its ldapi socket.
  std::size_t master_agreements() const {
    auto ldapi = store::ldapi_url_for(master_->dir() / "slapd" / "ldapi");
    auto peers = store::replication_peers(
        store::LdapEndpoint{ldapi, "cn=admin,cn=config", read_file(master_->password_file()), 20000});
    EXPECT_TRUE(peers) << peers.error().message;
    return peers ? peers->size() : 0;
  }

  static CaServer* master_;
  TempDir work_{"ca-spawn-live"};
  unsigned short server_port_ = 0;
  unsigned short directory_port_ = 0;
};
CaServer* SpawnFromALiveMasterTest::master_ = nullptr;

TEST_F(SpawnFromALiveMasterTest, DryRunChecksEverythingAndChangesNothing) {
  int before = replicas();
  auto out = spawn(clone_yaml(""), "--dry-run");
  EXPECT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("serves the same CA"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("Dry run: nothing was changed"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("register instance 'clone1'"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("both directions with the master's directory"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(work_.path() / "clone1")) << "a dry run made the instance folder";
  EXPECT_EQ(replicas(), before) << "a dry run registered a replica";
  EXPECT_EQ(master_agreements(), 0u);
}

TEST_F(SpawnFromALiveMasterTest, AHalfDoneSpawnIsFinishedByARerunUnderTheSameReplicaId) {
  int before = replicas();
  // setup_replication: false and nobody sets it up: step 5 gives up after 2 s, with a clear message.
  auto first = spawn(clone_yaml("  setup_replication: false\n  sync_timeout_seconds: 2\n"), "--no-start");
  EXPECT_EQ(first.exit_code, 1) << first.output;
  EXPECT_NE(first.output.find("did not arrive within 2 s"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("run the same command again"), std::string::npos) << first.output;
  EXPECT_EQ(first.output.find("[6/7]"), std::string::npos) << "went past step 5:\n" << first.output;
  EXPECT_EQ(master_agreements(), 0u) << "setup_replication: false, yet the master's directory got an agreement";
  ASSERT_EQ(replicas(), before + 1);
  auto written = load_instance_config(work_.path() / "clone1" / "instance.yaml");
  ASSERT_TRUE(written) << written.error().message;
  int replica_id = written->ranges.replica_id;
  EXPECT_GT(replica_id, 1);

  // The operator lets spawn set up replication after all and runs it again: it continues in the
  // same folder under the same replica ID, and finishes.
  auto second = spawn(clone_yaml(""), "--no-start");
  EXPECT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("continuing in the existing folder"), std::string::npos) << second.output;
  EXPECT_NE(second.output.find(fmt::format("replica ID {}", replica_id)), std::string::npos) << second.output;
  EXPECT_EQ(replicas(), before + 1) << "the re-run claimed another replica ID";
  EXPECT_EQ(master_agreements(), 1u);
  auto finished = load_instance_config(work_.path() / "clone1" / "instance.yaml");
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->ranges.replica_id, replica_id);
  // Step 7 ran: the clone's TLS certificate is there and chains to the master's CA.
  auto verified = shell(fmt::format("openssl verify -CAfile {} {}", master_->ca_file().string(),
                                    (work_.path() / "clone1" / "certs" / "sslserver.pem").string()));
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
}

TEST_F(SpawnFromALiveMasterTest, AFolderOfARetiredCloneIsRefusedBeforeRegistering) {
  auto yaml = clone_yaml("", "retiree");
  auto made = spawn(yaml, "--no-start");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto removed = shell(
      fmt::format("{} remove --config {} --instance-id retiree 2>&1", ca_clone(), master_->config_file().string()));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  int before = replicas();
  auto again = spawn(yaml, "--no-start");
  EXPECT_EQ(again.exit_code, 1) << again.output;
  // Its own subsystem certificate was revoked with it: the master refuses it before anything.
  EXPECT_NE(again.output.find("no longer accepts"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("REVOKED"), std::string::npos) << again.output;
  EXPECT_EQ(replicas(), before) << "the refused re-run registered a new replica ID";
}

}  // namespace
}  // namespace ca::testing
